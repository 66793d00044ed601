#!/usr/bin/env bash
# nsvpn@.service under a real systemd: run by package.sh as a service of a
# systemd booted with systemd-nspawn --boot --private-network, in a root where
# the package is installed (nothing here reaches the machine's network).
# A lab WireGuard gateway (wireguard-go) with a web page at 10.20.1.5 named
# by its DNS as db.internal; the profile is split (a direct prefix: the
# user-mode stack, and split DNS: the resolver) and keeps a forward. First a
# service of the system's joins the profile with the drop-in `nsvpn unit`
# prints (on a host whose /etc/resolv.conf is a symbolic link, as under
# systemd-resolved, and with an nscd socket): starting it brings the profile
# up, it reaches the page by name through the profile's DNS; then
# systemctl start, status, an exec inside, the forward from the host,
# systemctl stop (which stops the service first), and nothing left. Exit
# status 0 only if all of it held.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LAB_DIR=/run/nsvpn-lab
# shellcheck source=lab.sh
. "$here/lab.sh"

say() { echo "systemd-proof: $*"; }
fail() {
  say "FAIL: $*"
  journalctl -u nsvpn@alpha.service --no-pager -o cat 2>&1 | tail -n 30 | sed 's/^/systemd-proof:   journal: /'
  nsvpn status alpha 2>&1 | sed 's/^/systemd-proof:   status: /'
  exit 1
}
# in_unit PID: the process is in nsvpn@alpha's cgroup (v2, or v1's hierarchies).
in_unit() {
  local cg b
  cg=$(systemctl show -P ControlGroup nsvpn@alpha)
  [ -n "$cg" ] || return 1
  for b in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
    [ -r "$b$cg/cgroup.procs" ] && grep -qx "$1" "$b$cg/cgroup.procs" && return 0
  done
  return 1
}
t0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - t0) / 1000000)); }

say "systemd $(systemctl --version | head -n 1 | cut -d' ' -f2) is PID 1: $(cat /proc/1/comm); state $(systemctl is-system-running || true)"
mkdir -p "$LAB_DIR"
lab_network alpha 0
lab_httpd alpha
lab_wireguard alpha 0
# The profile, as an administrator would install it.
install -m 0600 "$LAB_DIR/profiles/alpha.conf" /etc/nsvpn/alpha.conf
cat > /etc/nsvpn/profiles/alpha.toml <<'TOML'
description = "lab gateway alpha (WireGuard)"
[vpn]
kind = "wireguard"
config = "/etc/nsvpn/alpha.conf"
[split]
direct = ["192.0.2.0/24"]
[forward]
ports = ["15480:db.internal:80"]
TOML
say "lab ready after $(ms) ms"

# The host's /etc/resolv.conf a link to a resolver's file (as
# systemd-resolved's stub), and an nscd socket: neither may reach the service.
mountpoint -q /etc/resolv.conf && umount /etc/resolv.conf
[ -e /etc/resolv.conf ] && mv /etc/resolv.conf /etc/resolv.conf.proof-saved
mkdir -p /run/proof-resolved /run/nscd
printf 'nameserver 192.0.2.53\n' > /run/proof-resolved/stub-resolv.conf
ln -s /run/proof-resolved/stub-resolv.conf /etc/resolv.conf
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("/run/nscd/socket")'
cat > /run/proof-client.sh <<'SH'
echo "resolv.conf: $(readlink /etc/resolv.conf) $(grep ^nameserver /etc/resolv.conf)"
echo "nscd: $(stat -c '%F %a' /run/nscd/socket)"
echo "getent: $(getent hosts db.internal | tr -s ' ')"
exec 3<>/dev/tcp/db.internal/80 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && echo "page: $(tail -n 1 <&3)"
exec sleep infinity
SH
cat > /etc/systemd/system/lab-client.service <<'UNIT'
[Unit]
Description=lab client: alpha's page by name, then waits
[Service]
User=nobody
ExecStart=/bin/bash /run/proof-client.sh
UNIT
mkdir -p /etc/systemd/system/lab-client.service.d
nsvpn unit alpha lab-client > /etc/systemd/system/lab-client.service.d/nsvpn-alpha.conf || fail "nsvpn unit alpha lab-client failed"
grep -v '^#' /etc/systemd/system/lab-client.service.d/nsvpn-alpha.conf | sed 's/^/systemd-proof:   drop-in: /'
systemctl daemon-reload
systemd-analyze verify /etc/systemd/system/lab-client.service > /run/proof-verify.log 2>&1 \
  || { cat /run/proof-verify.log; fail "systemd-analyze verify lab-client.service (with the drop-in) failed"; }
say "\$ systemctl start lab-client   (its drop-in from \`nsvpn unit alpha lab-client\`)"
s=$(ms)
systemctl start lab-client || fail "systemctl start lab-client failed"
[ "$(systemctl is-active nsvpn@alpha)" = active ] || fail "starting lab-client did not bring nsvpn@alpha up"
for _ in $(seq 100); do journalctl -u lab-client -o cat | grep -q '^page: ' && break; sleep 0.1; done
client_log=$(journalctl -u lab-client -o cat | grep -E '^(resolv.conf|nscd|getent|page): ')
say "lab-client and nsvpn@alpha active $(($(ms) - s)) ms after the start; it says:"
echo "$client_log" | sed 's/^/systemd-proof:   lab-client: /'
[ "$(echo "$client_log" | grep '^page: ')" = "page: alpha" ] || fail "lab-client did not get alpha's page by name"
[ "$(echo "$client_log" | grep '^getent: ')" = "getent: 10.20.1.5 db.internal" ] || fail "lab-client did not resolve db.internal through alpha's DNS"
[ "$(echo "$client_log" | grep '^resolv.conf: ')" = "resolv.conf: /run/proof-resolved/stub-resolv.conf nameserver 127.0.0.1" ] \
  || fail "lab-client's resolv.conf (through the host's link) is not the profile's"
[ "$(echo "$client_log" | grep '^nscd: ')" = "nscd: socket 0" ] || fail "the host's nscd socket is not out of lab-client's reach"
client=$(systemctl show -P MainPID lab-client)
[ "$(readlink /proc/$client/ns/net)" = "$(ip netns exec nsvpn-alpha readlink /proc/self/ns/net)" ] || fail "lab-client (pid $client) is not in alpha's namespace"
say "lab-client (pid $client, as $(ps -o user= -p "$client")) runs in alpha's namespace; the host still reads $(grep ^nameserver /etc/resolv.conf)"

say "\$ systemctl start nsvpn@alpha"
s=$(ms)
systemctl start nsvpn@alpha || fail "systemctl start nsvpn@alpha failed"
say "started in $(($(ms) - s)) ms"
say "\$ systemctl status nsvpn@alpha"
systemctl status --no-pager -l -n 5 nsvpn@alpha | sed 's/^/systemd-proof:   /' || true
[ "$(systemctl is-active nsvpn@alpha)" = active ] || fail "nsvpn@alpha is not active"
client=$(pgrep -f 'wireguard-go -f nsvt-alpha$') || fail "no wireguard-go client for nsvt-alpha"
in_unit "$client" || fail "the client (pid $client) is not in the unit's cgroup"
say "the client, wireguard-go pid $client, runs in the unit's cgroup $(systemctl show -P ControlGroup nsvpn@alpha)"
# bash's /dev/tcp: the name resolves through the profile's DNS (glibc, as
# any program's would). (busybox wget crashes in this container, with or
# without nsvpn.)
get='exec 3<>/dev/tcp/db.internal/80 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && tail -n 1 <&3'
say "\$ nsvpn exec alpha -- bash -c '$get'"
page=$(nsvpn exec alpha -- bash -c "$get" 2>&1) || fail "exec inside failed: $page"
[ "$page" = alpha ] || fail "exec inside got '$page', not alpha's page"
say "  $page"
# The split profile's helpers run in the unit's cgroup, the resolver and
# the forwarder as nobody; the kept forward reaches the page from here.
for h in "slirp4netns:/run/netns/nsvpn-alpha" "dnsmasq:/run/nsvpn/alpha/" "nsvpn:kept-forwards alpha"; do
  pid=$(pgrep -f "${h#*:}" | while read -r p; do [ "$(basename "$(readlink /proc/$p/exe)")" = "${h%%:*}" ] && echo "$p"; done | head -n 1)
  [ -n "$pid" ] || fail "no ${h%%:*} for alpha"
  in_unit "$pid" || fail "${h%%:*} (pid $pid) is not in the unit's cgroup"
  say "${h%%:*} pid $pid runs in the unit's cgroup, as $(ps -o user= -p "$pid")"
done
[ "$(ps -o user= -p "$(pgrep -f 'kept-forwards alpha$')")" = nobody ] || fail "the kept forward does not run as nobody"
fwd='exec 3<>/dev/tcp/127.0.0.1/15480 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && tail -n 1 <&3'
page=$(bash -c "$fwd" 2>&1) || fail "the kept forward on 127.0.0.1:15480 failed: $page"
[ "$page" = alpha ] || fail "the kept forward got '$page', not alpha's page"
say "the kept forward 127.0.0.1:15480 -> db.internal:80: $page"
nsvpn status alpha | grep -E '^  (split|split dns|stack|resolver|forwards|parts) ' | sed 's/^/systemd-proof:   /'
# A user's process inside (as `sudo nsvpn exec` starts it): stop must end it,
# which takes the unit's CAP_SYS_PTRACE (to see it is inside) and CAP_KILL.
SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody nsvpn exec alpha -- sleep 600 &
sleeper=$!
for _ in $(seq 100); do [ "$(stat -c %u /proc/$sleeper 2> /dev/null)" = 65534 ] && break; sleep 0.02; done
[ "$(stat -c %u /proc/$sleeper)" = 65534 ] || fail "the user's sleep inside did not start"
say "a user's process inside: pid $sleeper ($(tr '\0' ' ' < /proc/$sleeper/cmdline)), uid 65534"
# Outside the profile (this container's host namespace) 10.20.1.5 is not routed.
if ip route get 10.20.1.5 > /dev/null 2>&1; then fail "10.20.1.5 is routed outside the profile"; fi

say "\$ systemctl stop nsvpn@alpha"
s=$(ms)
systemctl stop nsvpn@alpha
say "stopped in $(($(ms) - s)) ms"
journalctl -u nsvpn@alpha.service --no-pager -o cat | grep -E '^nsvpn: (ended|profile alpha is down)' | sed 's/^/systemd-proof:   journal: /'
[ "$(systemctl is-active nsvpn@alpha || true)" = inactive ] || fail "nsvpn@alpha is not inactive after stop"
[ "$(systemctl is-active lab-client || true)" = inactive ] || fail "lab-client is not inactive after nsvpn@alpha stopped"
! journalctl -u nsvpn@alpha.service -o cat | grep -q 'sleep infinity' || fail "nsvpn down had to end lab-client's process: systemd did not stop it first"
[ -d "/proc/$client" ] && fail "lab-client's process $client is left"
say "stopping nsvpn@alpha stopped lab-client first (systemd ended it; nsvpn down found nothing of it inside)"
left=()
ip netns list | grep -q '^nsvpn-alpha' && left+=("namespace nsvpn-alpha")
ip -o link show | grep -q 'nsv[thn]-alpha' && left+=("links: $(ip -o link show | grep -o 'nsv[thn]-alpha' | tr '\n' ' ')")
[ -e /run/nsvpn/alpha ] && left+=(/run/nsvpn/alpha)
[ -e /etc/netns/nsvpn-alpha ] && left+=(/etc/netns/nsvpn-alpha)
[ -e /run/wireguard/nsvt-alpha.sock ] && left+=(/run/wireguard/nsvt-alpha.sock)
pgrep -f 'nsvt-alpha' > /dev/null && left+=("processes: $(pgrep -af nsvt-alpha)")
helpers='/run/netns/nsvpn-alpha|/run/nsvpn/alpha/|kept-forwards alpha$'
pgrep -f "$helpers" > /dev/null && left+=("helpers: $(pgrep -af "$helpers")")
[ -n "$(systemctl show -P ControlGroup nsvpn@alpha)" ] && left+=("the unit's cgroup")
case $(ps -o stat= -p "$sleeper" || true) in ''|Z*) wait "$sleeper" 2> /dev/null || true ;; *) left+=("the user's sleep $sleeper") ;; esac
[ ${#left[@]} -eq 0 ] || fail "left after stop: ${left[*]}"
say "nothing left: no namespace, link, file, socket, process (the user's sleep ended) or cgroup of alpha"

lab_down
rm -f /etc/nsvpn/profiles/alpha.toml /etc/nsvpn/alpha.conf /run/proof-client.sh /run/proof-verify.log
rm -rf /etc/systemd/system/lab-client.service /etc/systemd/system/lab-client.service.d /run/proof-resolved /run/nscd
systemctl daemon-reload
rm /etc/resolv.conf
[ -e /etc/resolv.conf.proof-saved ] && mv /etc/resolv.conf.proof-saved /etc/resolv.conf
say "PASS in $(ms) ms"
