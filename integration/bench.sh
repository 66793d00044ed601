#!/usr/bin/env bash
# Benchmarks, in the lab sandbox, each figure a median over its runs with
# the spread (min-max), side by side with what it is measured against:
#  - `up` and `down` of a wireguard-go profile against the shell
#    equivalent (bench-shell.sh: ip, wg, wireguard-go), and each run of
#    both split into the kernel's move of the device into the namespace
#    (the floor under up, varying from run to run) and the rest, and each
#    down split into wireguard-go's wait for the kernel's fsnotify grace
#    period (bench-down-split.py, traced) and the rest;
#  - `exec` against `ip netns exec`, as root and (with setpriv) as a user;
#  - `up`/`down` of every kind (OpenVPN, OpenConnect, IPsec too);
#  - `up` with 64 profiles up against `up` with none, and `status --json`
#    and `list` with 64 profiles up;
#  - throughput (iperf3) through a profile's tunnel against the same
#    tunnel on the host, without a namespace;
#  - split tunnel: `up` with and without [split], name look-ups through
#    the split resolver, a kept forward's throughput.
# It ends with a table of the ratios and the goals. A benchmark, not a
# test: it never fails on a time.
# Usage: sudo integration/bench.sh [--smoke]
#   --smoke: a few runs of each, 8 profiles instead of 64 (CI runs it so)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=outside.sh
source "$here/outside.sh" "$here/bench.sh" "$@"
export PATH=$root/target/release:$PATH
smoke=no
for a in "$@"; do [ "$a" = --smoke ] && smoke=yes; done
if [ $smoke = yes ]; then
  RUNS=3 EXEC_RUNS=20 KIND_RUNS=2 MANY=8 IPERF_SECS=1 IPERF_RUNS=1
else
  RUNS=15 EXEC_RUNS=300 KIND_RUNS=5 MANY=64 IPERF_SECS=3 IPERF_RUNS=3
fi
source "$here/lab.sh"
B=/run/bench
mkdir -p $B
trap lab_down EXIT
lab_up > /run/lab-setup.log 2>&1 || { tail -n 30 /run/lab-setup.log; exit 1; }
conf=$LAB_DIR/profiles/alpha.conf

# measure KEY RUNS PREPARE COMMAND: runs COMMAND (no shell: hyperfine -N)
# RUNS times, PREPARE before each run, and records its median and spread.
measure() {
  local key=$1 runs=$2 prep=$3 cmd=$4 args=(-N --runs "$2" --warmup 1 --style none --export-json "$B/$1.json")
  [ -n "$prep" ] && args+=(--prepare "$prep")
  if ! hyperfine "${args[@]}" "$cmd" > "$B/$key.log" 2>&1; then
    echo "bench: '$cmd' failed:"; cat "$B/$key.log"; exit 1
  fi
  python3 - "$B/$key.json" "$key" "$cmd" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
ms = lambda s: s * 1000
print(f"{sys.argv[2]:<14} {ms(r['median']):8.2f} ms  ({ms(r['min']):.2f}-{ms(r['max']):.2f}, {len(r['times'])} runs)  {sys.argv[3]}")
PY
}
median() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median']*1000)" "$B/$1.json"; }
quiet() { "$@" > /dev/null 2>&1 || true; }

echo "## up and down: nsvpn against the shell equivalent (wireguard-go, $RUNS runs each)"
measure shell_up "$RUNS" "sh -c '$here/bench-shell.sh down $conf >/dev/null 2>&1; true'" "$here/bench-shell.sh up $conf"
quiet "$here/bench-shell.sh" down "$conf"
measure shell_down "$RUNS" "sh -c '$here/bench-shell.sh up $conf'" "$here/bench-shell.sh down $conf"
measure nsvpn_up "$RUNS" "sh -c 'nsvpn down alpha >/dev/null 2>&1; true'" "nsvpn up alpha"
quiet nsvpn down alpha
measure nsvpn_down "$RUNS" "nsvpn up alpha" "nsvpn down alpha"

echo "## where up's and down's time goes (nsvpn -vvv: each line stamped since the start)"
echo "# The kernel's own steps are the floor: creating the namespace and the"
echo "# veth pair, moving the tunnel device in (one RCU barrier), deleting links"
echo "# (one RCU barrier for the whole link group), and the handshake's round trip."
nsvpn -vvv up alpha 2>&1 | grep -E '\[ *[0-9.]+ ms\]' | grep -v ': create$' | sed 's/^nsvpn: /  up:   /'
nsvpn -vvv down alpha 2>&1 | grep -E '\[ *[0-9.]+ ms\]' | grep -E 'read /proc|removed|ended|stopping' | sed 's/^nsvpn: /  down: /'
echo "## up, split: the kernel's move of the tunnel device into the namespace, and the rest ($RUNS runs each, alternating)"
echo "# Both move the device the same way (it is made on the host, where its UDP"
echo "# socket must live); the move waits for the kernel's RCU barrier, whose"
echo "# length varies from run to run. Each run's move is taken out of that run:"
echo "# nsvpn's from its -vvv stamps, the shell's around its \`ip link set netns\`"
echo "# (ip's own start-up counted as the move's)."
python3 - "$RUNS" "$conf" "$here/bench-shell.sh" "$B" <<'PY'
import os, re, statistics, subprocess, sys, time
runs, conf, shell, d = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
stamps = f"{d}/move-stamps"
def timed(argv, env=None):
    t = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, check=True)
    return (time.perf_counter() - t) * 1000, p.stderr
rows = {"ns_up": [], "ns_move": [], "sh_up": [], "sh_move": []}
for _ in range(runs):
    subprocess.run([shell, "down", conf], **quiet)
    total, _ = timed([shell, "up", conf], dict(os.environ, BENCH_STAMPS=stamps))
    a, b = (float(x.replace(",", ".")) for x in open(stamps).read().split())
    rows["sh_up"].append(total); rows["sh_move"].append((b - a) * 1000)
    subprocess.run([shell, "down", conf], **quiet)
    subprocess.run(["nsvpn", "down", "alpha"], **quiet)
    total, err = timed(["nsvpn", "-vvv", "up", "alpha"])
    at = lambda what: float(re.search(r"\[ *([0-9.]+) ms\] nsvt-alpha " + what + "\n", err).group(1))
    rows["ns_up"].append(total); rows["ns_move"].append(at("moved into the namespace") - at("configured"))
    subprocess.run(["nsvpn", "down", "alpha"], **quiet)
rest = lambda up, mv: [u - m for u, m in zip(rows[up], rows[mv])]
rows["ns_rest"], rows["sh_rest"] = rest("ns_up", "ns_move"), rest("sh_up", "sh_move")
for k, v in rows.items():
    open(f"{d}/split_{k}", "w").write("\n".join(f"{x}" for x in v))
f = lambda k: f"{statistics.median(rows[k]):6.2f} ms ({min(rows[k]):.1f}-{max(rows[k]):.1f})"
print(f"  nsvpn: up {f('ns_up')}, of which the move {f('ns_move')}, the rest {f('ns_rest')}")
print(f"  shell: up {f('sh_up')}, of which the move {f('sh_move')}, the rest {f('sh_rest')}")
PY
echo "## down, split: wireguard-go's wait for the kernel's fsnotify grace period, and the rest ($RUNS runs each, alternating, traced)"
echo "# Both downs end with wireguard-go's exit: it closes its inotify descriptor"
echo "# (it watches its UAPI socket's file), and that close waits for the"
echo "# kernel's fsnotify SRCU grace period: 0.2 ms when the kernel expedites it,"
echo "# 12-25 ms (3-6 jiffies at HZ=250) when a second one finds the first still"
echo "# running. nsvpn waits for the exit (nothing of the profile may be left, and"
echo "# a fixed ListenPort must be free for the next up); the shell only until the"
echo "# socket is gone, which wireguard-go removes before that close when its"
echo "# device went first. Each run's wait, as far as it falls within that run's"
echo "# down (sched_switch, traced in a tracing instance of the bench's own), is"
echo "# taken out of that run."
python3 "$here/bench-down-split.py" "$RUNS" "$conf" "$here/bench-shell.sh" "$B"
echo "# the same kernel steps done alone by ip (each includes starting ip, about 1 ms):"
for _ in 1 2 3; do
  t0=$(date +%s%N); ip netns add nsb-floor; t1=$(date +%s%N)
  ip link add nsbh-floor type veth peer name nsbn-floor netns nsb-floor; t2=$(date +%s%N)
  ip link add nsbm-floor type veth peer name nsbp-floor; t3=$(date +%s%N)
  ip link set nsbm-floor netns nsb-floor; t4=$(date +%s%N)
  ip link del nsbh-floor; t5=$(date +%s%N)
  ip link del nsbp-floor
  ip netns del nsb-floor
  echo "  netns add $(((t1 - t0) / 1000)) us, veth add $(((t2 - t1) / 1000)) us, link move $(((t4 - t3) / 1000)) us, link del $(((t5 - t4) / 1000)) us"
done

echo "## exec: nsvpn exec against ip netns exec (absolute paths: no PATH search)"
nsvpn up alpha > /dev/null
measure exec_ip "$EXEC_RUNS" "" "ip netns exec nsvpn-alpha /bin/true"
measure exec_nsvpn "$EXEC_RUNS" "" "nsvpn exec alpha -- /bin/true"
measure exec_ip_user "$EXEC_RUNS" "" "ip netns exec nsvpn-alpha setpriv --reuid=65534 --regid=65534 --init-groups /bin/true"
# A sudo user: nsvpn reads SUDO_UID and friends (hyperfine passes them on).
SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody measure exec_nsvpn_user "$EXEC_RUNS" "" "nsvpn exec alpha -- /bin/true"
nsvpn down alpha > /dev/null

echo "## up and down of each kind ($KIND_RUNS runs each)"
for p in charlie delta echo; do
  measure "up_$p" "$KIND_RUNS" "sh -c 'nsvpn down $p >/dev/null 2>&1; true'" "nsvpn up $p"
  quiet nsvpn down $p
  measure "down_$p" "$KIND_RUNS" "nsvpn up $p" "nsvpn down $p"
done
echo "## what up says of its own work against the wait for the VPN"
for p in alpha charlie delta echo; do
  out=$(nsvpn up $p); nsvpn down $p > /dev/null
  echo "$p: $(echo "$out" | sed 's/.*is up (//; s/). Run.*//')"
done

echo "## $MANY profiles up (wireguard-go, each its own peer on gateway alpha)"
for i in $(seq "$MANY"); do
  n=$(printf 'm%02d' "$i")
  key=$(wg genkey)
  ip netns exec lab-gw-alpha wg set lgw0 peer "$(echo "$key" | wg pubkey)" allowed-ips "10.99.1.$i/32"
  sed -e "s|^PrivateKey = .*|PrivateKey = $key|" -e "s|^Address = .*|Address = 10.99.1.$i/32|" "$conf" \
    > "$LAB_DIR/profiles/$n.conf"
  chmod 600 "$LAB_DIR/profiles/$n.conf"
  # Explicit veth subnets: 64 hashed ones may collide (nsvpn refuses that).
  printf '[vpn]\nkind = "wireguard"\nconfig = "%s.conf"\n[veth]\nsubnet = "169.254.%d.%d/30"\n' \
    "$n" $((200 + i / 64)) $(((i % 64) * 4)) > "$LAB_DIR/profiles/$n.toml"
done
s=$(date +%s%N)
for i in $(seq "$MANY"); do nsvpn up "$(printf 'm%02d' "$i")" > /dev/null; done
echo "brought $MANY profiles up one after the other in $((($(date +%s%N) - s) / 1000000)) ms"
measure many_up "$RUNS" "sh -c 'nsvpn down alpha >/dev/null 2>&1; true'" "nsvpn up alpha"
quiet nsvpn down alpha
# The shell equivalent beside the same 64: what any up pays for them.
measure many_shell_up "$RUNS" "sh -c '$here/bench-shell.sh down $conf >/dev/null 2>&1; true'" "$here/bench-shell.sh up $conf"
quiet "$here/bench-shell.sh" down "$conf"
measure many_down "$RUNS" "nsvpn up alpha" "nsvpn down alpha"
# The same with the other profiles' wireguard-go stopped (SIGSTOP): each of
# them listens to the host's link and address events, and all wake at every
# one that up makes; stopped, they show what is nsvpn's own.
pkill -STOP -f 'wireguard-go -f nsvt-m[0-9]'
measure many_up_quiet "$RUNS" "sh -c 'nsvpn down alpha >/dev/null 2>&1; true'" "nsvpn up alpha"
quiet nsvpn down alpha
measure many_shell_up_quiet "$RUNS" "sh -c '$here/bench-shell.sh down $conf >/dev/null 2>&1; true'" "$here/bench-shell.sh up $conf"
quiet "$here/bench-shell.sh" down "$conf"
pkill -CONT -f 'wireguard-go -f nsvt-m[0-9]'
measure many_status "$RUNS" "" "nsvpn status --json"
measure many_list "$RUNS" "" "nsvpn list"
for i in $(seq "$MANY"); do quiet nsvpn down "$(printf 'm%02d' "$i")"; done

echo "## throughput: iperf3 through alpha's tunnel, against the same tunnel on the host ($IPERF_RUNS x ${IPERF_SECS} s)"
ip netns exec lab-db-alpha iperf3 -s -B 10.20.1.5 > /dev/null 2>&1 &
iperf=$!
for _ in $(seq 100); do ip netns exec lab-db-alpha ss -Hltn 'sport = :5201' | grep -q . && break; sleep 0.02; done
bps() { "$@" iperf3 -c 10.20.1.5 -t "$IPERF_SECS" -J | python3 -c "import json,sys; print(json.load(sys.stdin)['end']['sum_received']['bits_per_second'])"; }
: > $B/tp_ns; : > $B/tp_flat
for _ in $(seq "$IPERF_RUNS"); do
  nsvpn up alpha > /dev/null
  bps ip netns exec nsvpn-alpha >> $B/tp_ns
  nsvpn down alpha > /dev/null
  "$here/bench-shell.sh" flat-up "$conf"
  bps env >> $B/tp_flat
  "$here/bench-shell.sh" flat-down "$conf"
done
kill $iperf; wait $iperf 2> /dev/null || true
tp() { python3 -c "import statistics,sys; v=[float(l) for l in open(sys.argv[1])]; print(f'{statistics.median(v)/1e6:.0f} Mbit/s ({min(v)/1e6:.0f}-{max(v)/1e6:.0f})')" "$1"; }
echo "through the profile's namespace: $(tp $B/tp_ns)"
echo "the same tunnel on the host:     $(tp $B/tp_flat)"

echo "## split tunnel: alpha with and without [split] internet = true (and a kept forward)"
{ cat "$LAB_DIR/profiles/alpha.toml"
  printf '[split]\ninternet = true\n[forward]\nports = ["15432:10.20.1.5:9000"]\n'; } > "$LAB_DIR/profiles/salpha.toml"
measure split_up "$KIND_RUNS" "sh -c 'nsvpn down salpha >/dev/null 2>&1; true'" "nsvpn up salpha"
quiet nsvpn down salpha
measure split_down "$KIND_RUNS" "nsvpn up salpha" "nsvpn down salpha"
nsvpn up salpha > /dev/null
echo "## name look-ups inside salpha, through its split resolver (dnsmasq)"
measure lookup_vpn "$EXEC_RUNS" "" "ip netns exec nsvpn-salpha getent hosts db.internal"
measure lookup_inet "$EXEC_RUNS" "" "ip netns exec nsvpn-salpha getent hosts $LAB_INET_NAME"
echo "## a kept forward: 256 MiB from a service behind the VPN, from inside against through the forward"
ip netns exec lab-db-alpha socat TCP-LISTEN:9000,bind=10.20.1.5,reuseaddr,fork SYSTEM:'head -c 268435456 /dev/zero' &
served=$!
for _ in $(seq 100); do ip netns exec lab-db-alpha ss -Hltn 'sport = :9000' | grep -q . && break; sleep 0.02; done
measure fwd_inside "$KIND_RUNS" "" "ip netns exec nsvpn-salpha socat -u TCP:10.20.1.5:9000 OPEN:/dev/null"
measure fwd_forward "$KIND_RUNS" "" "socat -u TCP:127.0.0.1:15432 OPEN:/dev/null"
kill "$served"; wait "$served" 2> /dev/null || true
nsvpn down salpha > /dev/null

echo
echo "## summary: medians, ratio to the reference, and the goal"
python3 - "$B" "$MANY" <<'PY'
import json, os, statistics, sys
d, many = sys.argv[1], sys.argv[2]
def med(k):
    return json.load(open(f"{d}/{k}.json"))["results"][0]["median"] * 1000
def spread(k):
    r = json.load(open(f"{d}/{k}.json"))["results"][0]
    return f"{r['min']*1000:.1f}-{r['max']*1000:.1f}"
def tp(k):
    return statistics.median(float(l) for l in open(f"{d}/{k}"))
def verdict(ok):
    return "met" if ok else "NOT met"
print(f"| {'what':<50} | {'nsvpn (spread)':>22} | {'reference (spread)':>22} | {'ratio':>6} | {'goal':<9} |      |")
print(f"|{'-'*52}|{'-'*24}|{'-'*24}|{'-'*8}|{'-'*11}|------|")
def row(what, a, b, goal, limit):
    r = med(a) / med(b)
    print(f"| {what:<50} | {med(a):7.2f} ms ({spread(a):>10}) | {med(b):7.2f} ms ({spread(b):>10}) | {r:6.2f} | {goal:<9} | {verdict(r <= limit) if limit else '':<4} |")
row("up, against the shell equivalent", "nsvpn_up", "shell_up", "<= 0.4x", 0.4)
def split(k):
    return [float(l) for l in open(f"{d}/split_{k}")]
def srow(what, a, b, ratio=True):
    va, vb = split(a), split(b)
    ma, mb = statistics.median(va), statistics.median(vb)
    r = f"{ma/mb:6.2f}" if ratio else f"{'':>6}"
    print(f"| {what:<50} | {ma:7.2f} ms ({min(va):4.1f}-{max(va):4.1f}) | {mb:7.2f} ms ({min(vb):4.1f}-{max(vb):4.1f}) | {r} | {'':<9} |      |")
srow("... the kernel's move of the device, in each up", "ns_move", "sh_move")
srow("... up less that run's move (the floor taken out)", "ns_rest", "sh_rest")
row("down, against the shell equivalent", "nsvpn_down", "shell_down", "<= 0.5x", 0.5)
if os.path.exists(f"{d}/split_down_ns_wait"):
    # No ratio: the shell's down mostly returns before the wait.
    srow("... wireguard-go's wait for fsnotify, in each down", "down_ns_wait", "down_sh_wait", ratio=False)
    srow("... down less that run's wait (the floor taken out)", "down_ns_rest", "down_sh_rest")
else:
    print(f"| {'... its split: not measured (no tracefs)':<50} | {'':>22} | {'':>22} | {'':>6} | {'':<9} |      |")
row("exec as root, against ip netns exec", "exec_nsvpn", "exec_ip", "<= 1.0x", 1.0)
row("exec as a user, against ip netns exec + setpriv", "exec_nsvpn_user", "exec_ip_user", "<= 1.0x", 1.0)
row(f"up with {many} profiles up, against none", "many_up", "nsvpn_up", "<= 1.1x", 1.1)
row(f"... the shell equivalent's up, {many} up against none", "many_shell_up", "shell_up", "", None)
row(f"... nsvpn's up against the shell's, both with {many} up", "many_up", "many_shell_up", "", None)
row(f"up, {many} up, their wireguard-go stopped (SIGSTOP)", "many_up_quiet", "nsvpn_up", "", None)
row(f"... the shell equivalent's, the same", "many_shell_up_quiet", "shell_up", "", None)
row(f"down with {many} profiles up, against none", "many_down", "nsvpn_down", "", None)
def alone(what, k, goal, limit):
    print(f"| {what:<50} | {med(k):7.2f} ms ({spread(k):>10}) | {'':>22} | {'':>6} | {goal:<9} | {verdict(med(k) <= limit):<4} |")
for k, name in [("down_charlie", "OpenVPN"), ("down_delta", "OpenConnect"), ("down_echo", "IPsec"), ("nsvpn_down", "WireGuard (wireguard-go)")]:
    alone(f"down, {name}", k, "<= 100 ms", 100)
alone(f"status --json, {many} profiles up", "many_status", "< 50 ms", 50)
print(f"| {'list, ' + many + ' profiles up':<50} | {med('many_list'):7.2f} ms ({spread('many_list'):>10}) | {'':>22} | {'':>6} | {'':<9} |      |")
a, b = tp("tp_ns"), tp("tp_flat")
print(f"| {'throughput, against the same tunnel on the host':<50} | {a/1e6:14.0f} Mbit/s | {b/1e6:14.0f} Mbit/s | {a/b:6.2f} | {'>= 0.97x':<9} | {verdict(a/b >= 0.97):<4} |")
PY
