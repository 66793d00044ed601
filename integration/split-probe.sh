#!/usr/bin/env bash
# The lab facts the split tunnel (issue 12) relies on, proven as root with
# Debian's slirp4netns and dnsmasq against the lab's internet (lab.sh's
# lab_internet; started here when it is not already up). Each fact is a
# check that can fail; the leak checks have controls that show the leak.
#   - slirp4netns attached to a named namespace: the public service by
#     address and by name through slirp's DNS (.3, the host's resolver), a
#     half-closing client gets the answer exactly once, a large download
#     arrives intact, the host's loopback is not reachable, a VPN's more
#     specific route wins and an `unreachable` route under it holds when the
#     VPN is gone, the host's routes, ip_forward, nftables (with a
#     Docker-like FORWARD DROP) and resolv.conf stay byte-identical;
#   - what slirp4netns can run as: capabilities, --enable-sandbox,
#     --enable-seccomp, --userns-path, --exit-fd, the namespace's lifetime;
#   - dnsmasq inside the namespace: unprivileged, split forwarding with no
#     fallback, what --server=/d/# and --server=/d/ mean, --no-hosts,
#     --no-resolv.
# Leaves the sandbox as it found it (a trap cleans up, also on failure).
# Usage: sudo integration/sandbox.sh integration/split-probe.sh
set -uo pipefail   # not -e: a failing check is counted, not fatal (as suite.sh)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab.sh
source "$here/lab.sh"
# shellcheck source=checks.sh
source "$here/checks.sh"
[ "$(id -u)" = 0 ] || { echo "split-probe: run as root, in the sandbox (sudo integration/sandbox.sh $0)" >&2; exit 1; }

NS=lab-split              # the profile's namespace, as nsvpn would have it
VPN=lab-split-vpn         # a stand-in for the VPN: 10.20.0.0/16 on a veth
CTL=lab-split-ctl         # a second namespace for controls
CIDR=10.255.0.0/24 GW=10.255.0.2 SLIRP_DNS=10.255.0.3 GUEST=10.255.0.100
TAP=split0
WORK=/run/lab-split
SLIRP="slirp4netns --configure --netns-type=path --disable-host-loopback --cidr=$CIDR"
NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
CAPS="--inh-caps=+sys_admin,+net_admin --ambient-caps=+sys_admin,+net_admin"
HOST_LO_PORT=8099 VPN_DNS=10.20.0.53

# The machine as this probe finds it; compared again once it has cleaned up.
sandbox_state() {
  ip netns list | sort; ip -br link | awk '{print $1}' | sort; ip -br addr | sort
  ip -4 route show table all; ip -6 route show table all | grep -v fe80
  ls -A /etc/netns; nft list ruleset; readlink /etc/resolv.conf; cat /etc/resolv.conf
  pgrep -x slirp4netns; pgrep -ax dnsmasq | grep -v -- "$LAB_DIR"/; true
}
own_internet=
if ! ip netns list | grep -q "^$LAB_INET_NS\b"; then
  state_at_start=$(sandbox_state)
  mkdir -p "$LAB_DIR"
  own_internet=1
  lab_internet 2> /dev/null || { echo "FAIL - the lab's internet did not start"; exit 1; }
else
  state_at_start=$(sandbox_state)
fi

pids=()
cleanup() {
  local p
  for p in "$NS" "$VPN" "$CTL"; do [ -e "/run/netns/$p" ] && pids+=($(ip netns pids "$p")); done
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null; done
  pids=()
  exec 9>&- 2> /dev/null
  nft delete table inet lab_split_docker 2> /dev/null
  ip link del lab-split-peer 2> /dev/null; ip link del lab-split-ctl 2> /dev/null
  for p in "$NS" "$VPN" "$CTL"; do ip netns del "$p" 2> /dev/null; rm -rf "/etc/netns/$p"; done
  rm -rf "$WORK"
  if [ -n "$own_internet" ]; then lab_internet_down; own_internet=; fi
  true
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP

# fresh NAME: a new namespace with lo up, and its resolv.conf and hosts for
# ip netns exec (slirp's DNS, and a name dnsmasq must not read).
fresh() {
  ip netns del "$1" 2> /dev/null
  ip netns add "$1" && ip -n "$1" link set lo up && mkdir -p "/etc/netns/$1" &&
    echo "nameserver $SLIRP_DNS" > "/etc/netns/$1/resolv.conf" &&
    printf '127.0.0.1 localhost\n10.77.0.1 host-only.test\n' > "/etc/netns/$1/hosts"
}
# slirp NAME LOG COMMAND...: starts COMMAND (a slirp4netns line, perhaps
# behind setpriv) with --ready-fd=3 on fd 3; sets SLIRP_PID. Succeeds when
# slirp4netns says it is ready within 5 s; fails when it exits first.
slirp() {
  local name=$1 log=$2; shift 2
  rm -f "$WORK/ready"
  "$@" --ready-fd=3 "/run/netns/$name" "$TAP" > "$log" 2>&1 3> "$WORK/ready" &
  SLIRP_PID=$!; pids+=("$SLIRP_PID")
  for _ in $(seq 250); do
    [ -s "$WORK/ready" ] && return 0
    kill -0 "$SLIRP_PID" 2> /dev/null || return 1
    sleep 0.02
  done
  return 1
}
# started DESCRIPTION COMMAND...: check, in this shell (COMMAND starts a
# process this script must know: check's subshell would lose it).
started() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
stop() { kill "$1" 2> /dev/null; wait "$1" 2> /dev/null; true; }
alive() { kill -0 "$1" 2> /dev/null; }
# status_line PID: uid, effective capabilities, no_new_privs and seccomp.
status_line() { awk '/^(Uid|CapEff|NoNewPrivs|Seccomp):/{printf "%s%s %s", sep, $1, $2; sep=" "} END{print ""}' "/proc/$1/status"; }
in_ns() { ip netns exec "$NS" "$@"; }
fetch() { ip netns exec "$1" curl -sS -m 10 "http://$2/${3:-}"; }
# slirp_works NAME: the public service answers from inside NAME, by name.
slirp_works() { [ "$(fetch "$1" "$LAB_INET_NAME")" = public ]; }
# first_error LOG: slirp4netns's first line that is an error of its own.
first_error() { grep -v -e '^ *\*' -e '^Starting' -e '^Started' -e '^sent tapfd' -e '^received tapfd' -e '^WARNING' "$1" | head -n 1; }

# The helpers the checks run under bash -c.
export NS WORK GW HOST_LO_PORT LAB_DIR LAB_INET_NS
export -f lab_inet_asked in_ns status_line alive

mkdir -p "$WORK"
echo "# $(slirp4netns --version | head -n 1), libslirp $(slirp4netns --version | sed -n 's/^libslirp: //p'), $(dnsmasq --version | head -n 1)"

echo "# the host, before: a Docker-like nftables FORWARD DROP, ip_forward off"
check "an nftables table like Docker's (forward policy drop) is on the host" \
  nft -f - <<'NFT'
table inet lab_split_docker {
  chain forward { type filter hook forward priority 0; policy drop; }
}
NFT
expect "the host does not forward" "net.ipv4.ip_forward = 0" sysctl net.ipv4.ip_forward
host_before() { ip -4 route show table all; ip -6 route show table all | grep -v fe80; sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding; nft list ruleset; readlink /etc/resolv.conf; cat /etc/resolv.conf; }
before=$(host_before)

echo "# slirp4netns as root, attached to a named namespace"
fresh "$NS"
t0=$(date +%s%N)
started "$SLIRP /run/netns/$NS $TAP is ready (--ready-fd)" slirp "$NS" "$WORK/slirp.log" $SLIRP
echo "       (ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
root_slirp=$SLIRP_PID
expect "inside: $TAP has $GUEST/24 and the default route via $GW" "$TAP $GUEST/24 default via $GW dev $TAP" \
  bash -c "echo \$(ip -n $NS -4 -br addr show dev $TAP | awk '{print \$1, \$3}') \$(ip -n $NS route show default)"
expect "the public service by address" "public" fetch "$NS" "$LAB_INET_WWW"
expect "the TCP echo service echoes" "echo through slirp" bash -c "echo 'echo through slirp' | ip netns exec $NS socat -t 5 - TCP:$LAB_INET_WWW:$LAB_INET_ECHO_PORT"
asked=$(lab_inet_asked "$LAB_INET_NAME")
expect "the public name through slirp's DNS ($SLIRP_DNS)" "$LAB_INET_WWW" in_ns dig +short +tries=1 +time=3 "@$SLIRP_DNS" "$LAB_INET_NAME"
check "... which asked the host's resolver, the public DNS, from the host's own address" \
  bash -c "[ \$(lab_inet_asked $LAB_INET_NAME) -gt $asked ] && grep -q 'query\\[A\\] $LAB_INET_NAME from $LAB_INET_HOST\$' $LAB_DIR/internet/dns.log"
expect "the public service by name (glibc, resolv.conf naming $SLIRP_DNS)" "public" fetch "$NS" "$LAB_INET_NAME"
for i in 1 2 3; do
  expect "a client that half-closes first gets the answer exactly once ($i of 3)" "$LAB_INET_EOF_LINE" \
    bash -c "ip netns exec $NS socat - TCP:$LAB_INET_WWW:$LAB_INET_EOF_PORT < /dev/null"
done
want_sum=$(cut -d' ' -f1 "$LAB_DIR/internet/www/big.bin.sha256")
for i in 1 2 3; do
  expect "a $LAB_INET_BIG_MIB MiB download arrives intact (sha256, $i of 3)" "$want_sum" \
    bash -c "ip netns exec $NS curl -sS -m 30 http://$LAB_INET_NAME/big.bin | sha256sum | cut -d' ' -f1"
done
socat "TCP-LISTEN:$HOST_LO_PORT,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'echo host-loopback' & pids+=($!)
for _ in $(seq 100); do ss -Hltn "sport = :$HOST_LO_PORT" | grep -q . && break; sleep 0.02; done
lo_probe() { ip netns exec "$1" timeout 5 socat -T 3 - "TCP:$GW:$HOST_LO_PORT,connect-timeout=2" < /dev/null 2>&1; }
export -f lo_probe
expect "with --disable-host-loopback, the host's 127.0.0.1 is not reachable at $GW" "Network is unreachable" \
  bash -c "lo_probe $NS | grep -o 'Network is unreachable'"
fresh "$CTL"
if slirp "$CTL" "$WORK/ctl.log" slirp4netns --configure --netns-type=path --cidr="$CIDR"; then
  expect "control: without it, the same probe reaches the host's 127.0.0.1" "host-loopback" lo_probe "$CTL"
else
  fail "control: slirp4netns without --disable-host-loopback did not start: $(first_error "$WORK/ctl.log")"
fi
stop "$SLIRP_PID"; ip netns del "$CTL"

echo "# a VPN's routes win over slirp's default; an unreachable route beneath them holds"
ip netns add "$VPN"; ip -n "$VPN" link set lo up
ip -n "$NS" link add vpn0 type veth peer name vpn0 netns "$VPN"
ip -n "$NS" addr add 10.20.0.2/16 dev vpn0; ip -n "$NS" link set vpn0 up
ip -n "$VPN" addr add "$VPN_DNS/16" dev vpn0; ip -n "$VPN" addr add 10.20.1.5/16 dev vpn0; ip -n "$VPN" link set vpn0 up
ip -n "$NS" route add unreachable 10.20.0.0/16 metric 4000
ip netns exec "$VPN" dnsmasq -C /dev/null -k --no-resolv --no-hosts --bind-interfaces --listen-address="$VPN_DNS" \
  --pid-file= --address=/db.internal/10.20.1.5 --log-facility="$WORK/vpn-dns.log" & vpn_dns=$!; pids+=("$vpn_dns")
ip netns exec "$VPN" socat "TCP-LISTEN:5432,bind=10.20.1.5,reuseaddr,fork" SYSTEM:'echo vpn-db' & pids+=($!)
for _ in $(seq 100); do ip netns exec "$VPN" ss -Hltn 'sport = :5432' | grep -q . && ip netns exec "$VPN" ss -Hlun 'sport = :53' | grep -q . && break; sleep 0.02; done
db_probe() { ip netns exec "$NS" timeout 5 socat -T 3 - TCP:10.20.1.5:5432,connect-timeout=2 < /dev/null 2>&1; }
expect "with the VPN's 10.20.0.0/16 up, 10.20.1.5 is the VPN's" "vpn-db" db_probe
export -f db_probe
ip -n "$NS" link set vpn0 down   # the tunnel is gone: its connected route with it
expect "VPN down: 10.20.1.5 hits the unreachable route (EHOSTUNREACH, not ENETUNREACH)" "No route to host" bash -c "db_probe | grep -o -e 'No route to host' -e 'Network is unreachable' || db_probe"
expect "... and nothing for 10.20.0.0/16 reached the host's network" "0" lab_wan_saw "net 10.20.0.0/16" db_probe
ip -n "$NS" route del unreachable 10.20.0.0/16 metric 4000
leaked=$(lab_wan_saw "net 10.20.0.0/16" db_probe)
expect "control: without the unreachable route, the same probe leaks out by slirp to the host's network" "yes" \
  bash -c "[ $leaked -gt 0 ] && echo yes"
ip -n "$NS" route add unreachable 10.20.0.0/16 metric 4000
ip -n "$NS" link set vpn0 up

echo "# split DNS: dnsmasq on the namespace's 127.0.0.1, as nobody"
DNSMASQ=(dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces
  --listen-address=127.0.0.1 --pid-file= --user=nobody --group=nogroup --log-queries)
# dnsmasq_in LOG ARGS...: starts dnsmasq inside $NS (ip netns exec: its
# /etc/resolv.conf and /etc/hosts are $NS's) and waits for port 53.
dnsmasq_in() {
  local log=$1; shift
  ip netns exec "$NS" "$@" --log-facility="$log" & DNS_PID=$!; pids+=("$DNS_PID")
  for _ in $(seq 100); do in_ns ss -Hlun 'sport = :53' | grep -q 127.0.0.1 && return 0; alive "$DNS_PID" || return 1; sleep 0.02; done
  return 1
}
# ask NAME: status and answers of dnsmasq on 127.0.0.1 ("TIMEOUT" if none in 3 s).
ask() { in_ns dig +tries=1 +time=3 @127.0.0.1 "$1" 2>&1 | awk '/status:/{s=$6} /^[^;].*\tIN\tA\t/{a=a" "$NF} /timed out/{s="TIMEOUT"} END{sub(",", "", s); print s a}'; }
export -f ask
started "${DNSMASQ[*]} --server=/internal/$VPN_DNS --server=$SLIRP_DNS starts" \
  dnsmasq_in "$WORK/dns.log" "${DNSMASQ[@]}" --server=/internal/$VPN_DNS --server=$SLIRP_DNS
expect "... it bound 127.0.0.1:53 as root, then runs as nobody with no capability" "Uid: 65534 CapEff: 0000000000000000 NoNewPrivs: 0 Seccomp: 0" \
  status_line "$DNS_PID"
expect "... its servers are exactly the two given (no /etc/resolv.conf read)" "using nameserver $VPN_DNS#53 for domain internal
using nameserver $SLIRP_DNS#53" bash -c "grep -o -e 'using nameserver .*' -e 'reading .*' -e 'read /etc/.*' $WORK/dns.log | sed 's/ *\$//'"
asked=$(lab_inet_asked db.internal)
expect "db.internal goes to the VPN's DNS" "NOERROR 10.20.1.5" ask db.internal
expect "the public name goes to slirp's DNS (the host's resolver)" "NOERROR $LAB_INET_WWW" ask "$LAB_INET_NAME"
expect "the host's /etc/hosts-style file inside is not served (--no-hosts): host-only.test is forwarded, and refused" "REFUSED" ask host-only.test
kill "$vpn_dns"; wait "$vpn_dns" 2> /dev/null
expect "VPN's DNS dead: db.internal gets no answer at all" "TIMEOUT" ask db.internal
ip -n "$NS" link set vpn0 down
expect "VPN gone (the unreachable route): db.internal gets no answer at all" "TIMEOUT" ask db.internal
expect "... and the public DNS was never asked for db.internal" "0" bash -c "echo \$(( \$(lab_inet_asked db.internal) - $asked ))"
stop "$DNS_PID"
for form in "--server=/internal/" "--local=/internal/"; do
  dnsmasq_in "$WORK/dns-local.log" "${DNSMASQ[@]}" "$form" --server=$SLIRP_DNS
  asked=$(lab_inet_asked db.internal)
  expect "$form: db.internal is NXDOMAIN at once, never forwarded" "NXDOMAIN 0" bash -c "echo \$(ask db.internal) \$(( \$(lab_inet_asked db.internal) - $asked ))"
  stop "$DNS_PID"
done
dnsmasq_in "$WORK/dns-hash.log" "${DNSMASQ[@]}" "--server=/internal/#" --server=$SLIRP_DNS
asked=$(lab_inet_asked db.internal)
expect "--server=/internal/# is NOT local-only: db.internal goes to the default server, the public DNS's wrong answer (the leak the checks above would catch)" \
  "NOERROR $LAB_INET_WRONG 1" bash -c "echo \$(ask db.internal) \$(( \$(lab_inet_asked db.internal) - $asked ))"
stop "$DNS_PID"
echo "nameserver $SLIRP_DNS" > "/etc/netns/$NS/resolv.conf"
started "control: without --no-resolv --no-hosts (and no default --server)" \
  dnsmasq_in "$WORK/dns-ctl.log" dnsmasq --conf-file=/dev/null --keep-in-foreground --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --pid-file= --user=nobody --group=nogroup --server=/internal/$VPN_DNS
expect "... it reads the namespace's /etc/hosts and resolv.conf" "NOERROR 10.77.0.1 NOERROR $LAB_INET_WWW" bash -c "echo \$(ask host-only.test) \$(ask $LAB_INET_NAME)"
stop "$DNS_PID"
dnsmasq_in "$WORK/dns-nr.log" "${DNSMASQ[@]}" --server=/internal/$VPN_DNS
expect "with --no-resolv and no default --server, other names are refused" "REFUSED" ask "$LAB_INET_NAME"
stop "$DNS_PID"
ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=+net_bind_service --ambient-caps=+net_bind_service \
  dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --pid-file= --server=$SLIRP_DNS > "$WORK/dns-np.log" 2>&1 & DNS_PID=$!; pids+=("$DNS_PID")
for _ in $(seq 100); do in_ns ss -Hlun 'sport = :53' | grep -q 127.0.0.1 && break; sleep 0.02; done
expect "started as nobody with only CAP_NET_BIND_SERVICE (ambient), it works and keeps that capability" "NOERROR $LAB_INET_WWW Uid: 65534 CapEff: 0000000000000400" \
  bash -c "echo \$(ask $LAB_INET_NAME) \$(status_line $DNS_PID | cut -d' ' -f1-4)"
stop "$DNS_PID"
ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv \
  --no-hosts --no-poll --bind-interfaces --listen-address=127.0.0.1 --pid-file= --server=$SLIRP_DNS > "$WORK/dns-np.log" 2>&1
expect "started as plain nobody, it cannot bind port 53" "dnsmasq: failed to create listening socket for 127.0.0.1: Permission denied" sed '/^$/d' "$WORK/dns-np.log"
echo "nameserver $SLIRP_DNS" > "/etc/netns/$NS/resolv.conf"

echo "# the host is untouched by slirp4netns (still running)"
alive "$root_slirp" && ok "slirp4netns still runs" || fail "slirp4netns still runs"
expect "the host's routes, ip_forward, nftables ruleset and resolv.conf are byte-identical" "$before" host_before

echo "# the namespace's lifetime: slirp4netns outlives it, and holds it"
ip link add lab-split-peer type veth peer name inner netns "$NS"
ip netns del "$NS"; sleep 1.5
expect "ip netns del does not end slirp4netns, and the namespace lives on (its veth's host end is still there)" "alive lab-split-peer" \
  bash -c "echo \$(alive $root_slirp && echo alive) \$(ip -br link show lab-split-peer 2>/dev/null | cut -d@ -f1)"
stop "$root_slirp"
for _ in $(seq 60); do ip link show lab-split-peer > /dev/null 2>&1 || break; sleep 0.05; done
expect "once slirp4netns ends, the namespace goes (the host end with it)" "" bash -c "ip -br link show lab-split-peer 2>/dev/null"
fresh "$NS"
rm -f "$WORK/exit"; mkfifo "$WORK/exit"
# --exit-fd: slirp4netns ends when the other end of that pipe closes.
slirp4netns --configure --netns-type=path --disable-host-loopback --cidr="$CIDR" --exit-fd=4 "/run/netns/$NS" "$TAP" \
  4< "$WORK/exit" > "$WORK/exit.log" 2>&1 & xpid=$!; pids+=("$xpid")
exec 9> "$WORK/exit"
for _ in $(seq 100); do ip -n "$NS" -br addr show dev "$TAP" 2> /dev/null | grep -q "$GUEST" && break; sleep 0.02; done
check "--exit-fd: it runs while the pipe is open" slirp_works "$NS"
exec 9>&-
for _ in $(seq 100); do alive "$xpid" || break; sleep 0.02; done
wait "$xpid"; rc=$?
expect "... and exits (status 0) when its other end closes" "0" echo "$rc"
ip netns del "$NS"

echo "# what slirp4netns can run as (the namespace is root's: owned by the initial user namespace)"
try_as() {  # DESCRIPTION WANT(works|error text) COMMAND...: slirp4netns started by COMMAND
  local d=$1 want=$2; shift 2
  fresh "$NS"
  if slirp "$NS" "$WORK/as.log" "$@"; then
    if [ "$want" = works ] && slirp_works "$NS"; then ok "$d: works ($(status_line "$SLIRP_PID"))"
    else fail "$d: started, wanted: $want"; status_line "$SLIRP_PID" | sed 's/^/       /'; fi
  else
    local err; err=$(first_error "$WORK/as.log")
    if [ "$want" != works ] && [ "$err" = "$want" ]; then ok "$d: fails: $err"
    else fail "$d (wanted: $want)"; sed 's/^/       /' "$WORK/as.log" | tail -n 5; fi
  fi
  LAST_STATUS=$(alive "$SLIRP_PID" && status_line "$SLIRP_PID")
  stop "$SLIRP_PID"; ip netns del "$NS"
}
try_as "root" works $SLIRP
try_as "nobody, no capability" "setns(CLONE_NEWNET): Operation not permitted" $NOBODY $SLIRP
try_as "nobody, ambient CAP_SYS_ADMIN only" "ioctl(TUNSETIFF): Operation not permitted" \
  $NOBODY --inh-caps=+sys_admin --ambient-caps=+sys_admin $SLIRP
try_as "nobody, ambient CAP_NET_ADMIN only" "setns(CLONE_NEWNET): Operation not permitted" \
  $NOBODY --inh-caps=+net_admin --ambient-caps=+net_admin $SLIRP
try_as "nobody, ambient CAP_SYS_ADMIN+CAP_NET_ADMIN, no_new_privs, bounding set only those" works \
  $NOBODY $CAPS --no-new-privs --bounding-set=-all,+sys_admin,+net_admin $SLIRP
expect "... and it keeps both capabilities effective for its whole life" "Uid: 65534 CapEff: 0000000000201000" bash -c "echo '$LAST_STATUS' | cut -d' ' -f1-4"
fresh "$NS"
# (slirp appends its own arguments: they are this bash -c's $0, $1... and unused)
if slirp "$NS" "$WORK/as.log" bash -c "exec 5< /run/netns/$NS; exec $NOBODY $CAPS $SLIRP --ready-fd=3 /proc/self/fd/5 $TAP" &&
  slirp_works "$NS"; then
  ok "nobody with the two capabilities, given the namespace as an fd opened by root (/proc/self/fd/5): works"
else
  fail "nobody with the two capabilities, given the namespace as an fd"; tail -n 5 "$WORK/as.log" | sed 's/^/       /'
fi
stop "$SLIRP_PID"; ip netns del "$NS"
try_as "nobody with the two capabilities, --enable-seccomp" works $NOBODY $CAPS $SLIRP --enable-seccomp
try_as "nobody with the two capabilities, --enable-sandbox" "setegid(0)" $NOBODY $CAPS $SLIRP --enable-sandbox
try_as "root, --enable-sandbox --enable-seccomp" works $SLIRP --enable-sandbox --enable-seccomp
expect "... it drops to CAP_NET_BIND_SERVICE alone, no_new_privs, seccomp filter" "Uid: 0 CapEff: 0000000000000400 NoNewPrivs: 1 Seccomp: 2" echo "$LAST_STATUS"
# ip netns while a sandboxed slirp4netns runs: its own mount namespace
# receives /run/netns's mounts and their removal.
fresh "$NS"
slirp "$NS" "$WORK/sb.log" $SLIRP --enable-sandbox --enable-seccomp; sb=$SLIRP_PID
expect "with a sandboxed slirp4netns running, ip netns exec of its namespace binds the namespace's /etc/netns files" \
  "nameserver $SLIRP_DNS" in_ns cat /etc/resolv.conf
ip netns add "$CTL"; ip link add lab-split-ctl type veth peer name inner netns "$CTL"
check "... and ip netns add, exec, del of another namespace work" bash -c "ip netns exec $CTL true && ip netns del $CTL"
for _ in $(seq 60); do ip link show lab-split-ctl > /dev/null 2>&1 || break; sleep 0.05; done
expect "... and the other namespace is freed (slirp's mount namespace does not hold it)" "" bash -c "ip -br link show lab-split-ctl 2>/dev/null"
stop "$sb"; ip netns del "$NS"
$NOBODY unshare --user sleep 60 & userns=$!; pids+=("$userns")   # setpriv and unshare exec: $! is the sleep
for _ in $(seq 100); do [ "$(readlink "/proc/$userns/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break; sleep 0.02; done
try_as "root, --userns-path= a user namespace nobody made" "setns(CLONE_NEWNET): Operation not permitted" \
  $SLIRP --userns-path="/proc/$userns/ns/user"
try_as "root, --userns-path=/proc/1/ns/user (the initial one: the same as none)" works $SLIRP --userns-path=/proc/1/ns/user

echo "# cleanup leaves the sandbox as it was"
cleanup
expect "no namespace, link, address, route, /etc/netns entry, rule, resolv.conf change or process is left" "$state_at_start" sandbox_state
summary
