#!/usr/bin/env bash
# The integration suite: the real nsvpn binary, as root, against the lab's
# real wireguard-go gateways, dnsmasq and PostgreSQL. Runs inside
# sandbox.sh. Prints one line per check and "N passed, M failed" at the end.
# Usage: suite.sh NSVPN_BINARY
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NSVPN=$1
export PATH=$(dirname "$NSVPN"):$PATH
# shellcheck source=lab.sh
source "$here/lab.sh"

# shellcheck source=checks.sh
source "$here/checks.sh"
psql_side() { as_user nsvpn exec "$1" -- psql -h db.internal -U lab -d lab -Atc "select name from side"; }
trap 'lab_down' EXIT
echo "# setting up the lab"
if ! lab_up > /run/lab-setup.log 2>&1; then
  echo "FAIL - the lab did not start:"; tail -n 30 /run/lab-setup.log; echo "0 passed, 1 failed"; exit 1
fi
routes_before=$(host_routes)
echo "# the lab: the host's own network reaches the lab's internet"
expect "the host resolves $LAB_INET_NAME through its resolver, the public DNS" "$LAB_INET_WWW $LAB_INET_NAME" bash -c "getent hosts $LAB_INET_NAME | tr -s ' '"
expect "the host reaches the public service by name" "public" curl -sS -m 5 "http://$LAB_INET_NAME/"
resolv_before=$(sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf)

echo "# two profiles that claim the same subnet, up at once"
check "up alpha (kernel WireGuard if present, else wireguard-go)" nsvpn up alpha
check "up bravo (userspace = true)" nsvpn up bravo
expect "list shows both up (and the lab's other profiles down)" "alpha up bravo up charlie down delta down echo down" bash -c "nsvpn list | awk 'NR>1{printf \"%s%s %s\", sep, \$1, \$3; sep=\" \"}'"
check "up of a profile that is up is a no-op" nsvpn up alpha

echo "# each exec reaches its own database, by name, through its own DNS"
expect "alpha's psql reaches alpha's database" alpha psql_side alpha
expect "bravo's psql reaches bravo's database" bravo psql_side bravo
# Rust ignores SIGPIPE in nsvpn; the command must not inherit that.
expect "a command ends by SIGPIPE when its reader goes (yes | head -n 1), root's and a user's" "141 141" bash -c 'nsvpn exec alpha -- yes | head -n 1 > /dev/null; a=${PIPESTATUS[0]}; SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody nsvpn exec alpha -- yes | head -n 1 > /dev/null; echo $a ${PIPESTATUS[0]}'
expect "getent inside alpha resolves db.internal via alpha's DNS" "10.20.1.5 db.internal" bash -c "nsvpn exec alpha -- getent hosts db.internal | tr -s ' '"
expect "only alpha's dnsmasq knows only-alpha.internal" "10.20.9.0" bash -c "nsvpn exec alpha -- getent hosts only-alpha.internal | awk '{print \$1}'"
status_is "bravo cannot resolve alpha's names" 2 nsvpn exec bravo -- getent hosts only-alpha.internal
expect "a [hosts] entry lands in bravo's /etc/hosts" "10.20.0.1 gateway.bravo" bash -c "nsvpn exec bravo -- getent hosts gateway.bravo | tr -s ' '"
expect "resolv.conf inside alpha is the profile's" "nameserver 10.20.0.53" bash -c "nsvpn exec alpha -- grep ^nameserver /etc/resolv.conf"
expect "nsswitch.conf inside keeps lookups in the namespace" "hosts:          files dns" bash -c "nsvpn exec alpha -- grep ^hosts: /etc/nsswitch.conf"
expect "/sys/class/net inside shows the namespace's devices" "lo nsvn-alpha nsvt-alpha" bash -c "nsvpn exec alpha -- ls /sys/class/net | sort | tr '\n' ' ' | sed 's/ \$//'"

echo "# the host is untouched"
expect "the host's routes are unchanged (but for the veth links)" "$routes_before" host_routes
expect "the host's resolv.conf, hosts, nsswitch.conf are unchanged" "$resolv_before" sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf
# The host has its own default route (to the lab's internet): 10.20.1.5
# must still go there, by the host's uplink, and not into a tunnel.
expect "the host's route to 10.20.1.5 is still its own default route (its uplink, no tunnel)" "10.20.1.5 via $LAB_INET_GW dev $LAB_INET_LINK" \
  bash -c "ip -o route get 10.20.1.5 | awk '{print \$1, \$2, \$3, \$4, \$5}'"
expect "the host side of the veth only carries its /30" "2" bash -c "ip -4 route | grep -c ' dev nsvh-'"
# The host's resolver (the lab's public DNS) answers db.internal wrongly, on
# purpose: the host gets that answer, never alpha's.
expect "the host resolves db.internal through its own resolver only (the public DNS's wrong answer)" "$LAB_INET_WRONG db.internal" \
  bash -c "getent hosts db.internal | tr -s ' '"
unreachable "from inside alpha, the internet the host reaches is unreachable (no route)" inside alpha bash -c "exec 3<> /dev/tcp/$LAB_INET_WWW/$LAB_INET_HTTP_PORT"
status_is "alpha cannot resolve the public name (its DNS is the VPN's only)" 2 nsvpn exec alpha -- getent hosts "$LAB_INET_NAME"

echo "# ip netns exec sees the same network"
expect "ip netns exec nsvpn-alpha reaches alpha's database" alpha ip netns exec nsvpn-alpha psql -h 10.20.1.5 -U lab -d lab -Atc "select name from side"
expect "ip netns exec nsvpn-bravo uses bravo's resolv.conf" "nameserver 10.20.0.53" bash -c "ip netns exec nsvpn-bravo grep ^nameserver /etc/resolv.conf"

echo "# the command runs as the invoking user, with no capabilities"
expect "uid, gid and groups are the sudo user's" "65534 65534 65534" as_user nsvpn exec alpha -- sh -c 'echo $(id -u) $(id -g) $(id -G)'
expect "no capability in any set but the bounding set; no_new_privs" "CapInh:0000000000000000 CapPrm:0000000000000000 CapEff:0000000000000000 CapAmb:0000000000000000 NoNewPrivs:1" \
  as_user nsvpn exec alpha -- sh -c "grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs)' /proc/self/status | tr -d '\t' | tr '\n' ' ' | sed 's/ \$//'"
expect "with umask 077 (sudo keeps the user's), the user still reads resolv.conf inside" "nameserver 10.20.0.53" bash -c "umask 077; as_user nsvpn exec alpha -- grep ^nameserver /etc/resolv.conf"
check "an up under umask 077 writes /etc/netns files all may read" bash -c "umask 077; nsvpn down bravo >/dev/null && nsvpn up bravo >/dev/null && [ \"\$(stat -c %a /etc/netns/nsvpn-bravo /etc/netns/nsvpn-bravo/resolv.conf /etc/netns/nsvpn-bravo/hosts | xargs)\" = '755 644 644' ]"
expect "HOME, USER, LOGNAME and NSVPN_PROFILE are set" "/nonexistent nobody nobody alpha" as_user nsvpn exec alpha -- sh -c 'echo $HOME $USER $LOGNAME $NSVPN_PROFILE'
expect "root's own command keeps root's powers (as ip netns exec)" "0 $(grep ^CapEff /proc/self/status | cut -f2)" bash -c "env -u SUDO_UID -u SUDO_GID -u SUDO_USER nsvpn exec alpha -- sh -c 'echo \$(id -u) \$(grep ^CapEff /proc/self/status | cut -f2)'"
check "an unprivileged user can ping through the tunnel (ping_group_range)" as_user nsvpn exec alpha -- ping -c1 -W2 10.20.1.5
expect "the mount namespace is private: no bind shows on the host" "" bash -c "grep -c '/etc/resolv.conf' /proc/self/mountinfo | grep -v '^0\$'"

expect "shell runs the user's login shell inside, with NSVPN_PROFILE" "alpha $(getent passwd root | cut -d: -f7) 10.20.1.5" \
  bash -c "echo 'echo \$NSVPN_PROFILE \$SHELL \$(getent hosts db.internal | cut -d\" \" -f1)' | env -u SUDO_UID -u SUDO_GID -u SUDO_USER nsvpn shell alpha"

echo "# exit status"
status_is "the command's exit status comes back" 42 as_user nsvpn exec alpha -- sh -c 'exit 42'
# said_error DESCRIPTION LINE: the output of the last status_is is exactly LINE.
said_error() { [ "$(cat /tmp/out)" = "$2" ] && ok "$1" || { fail "$1"; echo "       wanted: $2"; sed 's/^/       got:    /' /tmp/out; }; }
status_is "command not found is 127" 127 as_user nsvpn exec alpha -- no-such-command-xyz
said_error "... with the error: prefix of every command" "nsvpn: error: no-such-command-xyz: command not found"
printf 'not executable\n' > /run/not-exec; chmod 644 /run/not-exec
status_is "command not executable is 126" 126 as_user nsvpn exec alpha -- /run/not-exec
said_error "... with the error: prefix" "nsvpn: error: cannot run /run/not-exec: Permission denied"
status_is "an nsvpn error (unknown profile) is 125" 125 nsvpn exec nosuchprofile -- true
grep -q '^nsvpn: error: no profile "nosuchprofile"' /tmp/out && ok "... with the error: prefix" || { fail "... with the error: prefix"; cat /tmp/out; }
status_is "an nsvpn error (bad name) is 125" 125 nsvpn exec ../etc -- true
grep -q '^nsvpn: error: ' /tmp/out && ok "... with the error: prefix" || { fail "... with the error: prefix"; cat /tmp/out; }

echo "# status"
expect "status --json reports the implementation and a handshake" "userspace true" bash -c "nsvpn status bravo --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[\"implementation\"], json.dumps(r[\"peers\"][0][\"last_handshake\"] is not None))'"
check "status shows the processes inside" bash -c "as_user() { SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody \"\$@\"; }; as_user nsvpn exec alpha -- sleep 30 & sleep 0.5; nsvpn status alpha | grep -q 'sleep 30'; rc=\$?; kill %1; wait; exit \$rc"

echo "# down refuses while processes are inside, --kill ends them"
as_user nsvpn exec alpha -- sleep 60 & sleeper=$!
sleep 0.5
status_is "down refuses and lists the process" 1 nsvpn down alpha
grep -q "sleep 60" /tmp/out && ok "the refusal names the process" || fail "the refusal names the process"
check "down --kill ends it and removes the profile" nsvpn down alpha --kill
wait $sleeper 2>/dev/null
# An interactive shell (under a terminal: script) ignores SIGTERM; a hang-up
# ends it, as when its terminal closes.
nsvpn up alpha > /dev/null
mkfifo /run/shell-in; sleep 60 > /run/shell-in & holder=$!
script -qfec "env -u SUDO_UID -u SUDO_GID -u SUDO_USER nsvpn shell alpha" /dev/null < /run/shell-in > /run/shell.out 2>&1 &
as_user nsvpn exec alpha -- sleep 300 & sleeper=$!
for _ in $(seq 250); do [ "$(ip netns pids nsvpn-alpha | wc -l)" -ge 2 ] && break; sleep 0.02; done; sleep 0.3
shell=$(getent passwd root | cut -d: -f7)
t0=$(date +%s%N); nsvpn down alpha --kill > /run/down.out 2>&1; rc=$?; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 0 ] && [ "$ms" -lt 1500 ] && ok "down --kill with an interactive shell and a sleep inside takes well under 3 s ($ms ms)" \
  || { fail "down --kill with an interactive shell and a sleep inside takes well under 3 s (exit $rc, $ms ms)"; cat /run/down.out; }
grep -q "^nsvpn: ended pid [0-9]* ($shell[^)]*) with SIGHUP: it ignores SIGTERM" /run/down.out && grep -q "^nsvpn: ended pid [0-9]* (sleep 300) with SIGTERM$" /run/down.out \
  && ok "... and names each process it ended, and the signal" || { fail "... and names each process it ended, and the signal"; cat /run/down.out; }
kill "$holder"; wait "$holder" "$sleeper" 2>/dev/null; rm -f /run/shell-in /run/shell.out /run/down.out
expect "exec of a profile that is down brings it up first; the command gets the caller's signal mask (up's blocked signals are not inherited)" \
  "$(awk '/^SigBlk/{print $2}' /proc/self/status)" bash -c "as_user nsvpn exec alpha -- awk '/^SigBlk/{print \$2}' /proc/self/status 2>/dev/null"
expect "... and it is up afterwards" "up" bash -c "nsvpn status alpha --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])'"

# alpha is on kernel WireGuard where the kernel has it (in a Vagrant VM, say):
# its tunnel dies by deleting the link; wireguard-go's by killing the process.
echo "# IPv6 inside only if the VPN provides it"
expect "alpha's VPN provides no IPv6: only lo's ::1 inside" "lo ::1/128" v6_of alpha
expect "... IPv6 is off on its veth end and its tunnel" "1 1" bash -c "ip netns exec nsvpn-alpha cat /proc/sys/net/ipv6/conf/nsvn-alpha/disable_ipv6 /proc/sys/net/ipv6/conf/nsvt-alpha/disable_ipv6 | xargs"
unreachable "... and an IPv6 address of the VPN's network is unreachable from inside alpha" inside alpha ping -6 -c1 -W1 fd99::1
expect "bravo's VPN provides fd99::2: it is on the tunnel, and the veth has no IPv6" "lo ::1/128
nsvt-bravo fd99::2/128" bash -c "v6_of bravo | grep -v 'nsvt-bravo fe80'"
expect "bravo reaches its gateway over IPv6 through the tunnel" "1 received" bash -c "as_user nsvpn exec bravo -- ping -6 -c1 -W2 fd99::1 | grep -o '1 received'"

echo "# kill switch: with alpha's tunnel dead, nothing from inside reaches anything"
impl=$(nsvpn status alpha --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["implementation"])')
if [ "$impl" = kernel ]; then
  ip -n nsvpn-alpha link del nsvt-alpha
  why="its tunnel device nsvt-alpha is gone"
else
  pid=$(nsvpn status alpha --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
  kill "$pid"; for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  why="its VPN client (wireguard-go pid [0-9]*) has exited"
fi
unreachable "the database is unreachable" inside alpha ping -c1 -W1 10.20.1.5
unreachable "the gateway's public address is unreachable" inside alpha ping -c1 -W1 203.0.113.2
unreachable "the other VPN's gateway is unreachable" inside alpha ping -c1 -W1 203.0.113.6
unreachable "a TCP connection to the database fails" inside alpha psql -h 10.20.1.5 -U lab -d lab -c "select 1"
unreachable "an address beyond the host is unreachable (IPv6 too)" inside alpha ping -6 -c1 -W1 2001:db8::1
h=$(nsvpn status alpha | awk '$1 == "veth" {print $6}')
ip -n nsvpn-alpha route add 192.0.2.0/24 via "$h"
no_escape alpha leaky
ip -n nsvpn-alpha route del 192.0.2.0/24 via "$h"
no_escape alpha
status_is "exec into the broken profile is refused (125)" 125 as_user nsvpn exec alpha -- true
grep -q "profile alpha is broken: $why" /tmp/out && ok "... and says why and what to do" || { fail "... and says why and what to do"; cat /tmp/out; }
expect "no route inside but the veth's own /30" "1" bash -c "ip -n nsvpn-alpha -4 route | wc -l"
check "the host's veth end is still reachable" inside alpha ping -c1 -W1 "$(nsvpn status alpha --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["veth"]["host"])')"
expect "status says broken" "broken" bash -c "nsvpn status alpha --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])'"
expect "bravo is unaffected" bravo psql_side bravo
check "down cleans up after the dead tunnel" nsvpn down alpha
check "and up works again" nsvpn up alpha
expect "alpha reaches its database again" alpha psql_side alpha

echo "# with bravo's tunnel link down (its VPN provides IPv6), nothing escapes either"
check "bravo reaches fd99::1 before" as_user nsvpn exec bravo -- ping -6 -c1 -W2 fd99::1
ip -n nsvpn-bravo link set nsvt-bravo down
unreachable "bravo's IPv6 gateway is unreachable with the link down" inside bravo ping -6 -c1 -W1 fd99::1
no_escape bravo
check "down and up bring bravo back" bash -c "nsvpn down bravo && nsvpn up bravo"
expect "bravo reaches its database again" bravo psql_side bravo

echo "# a failed up leaves nothing"
sed 's/^Endpoint = .*/Endpoint = 203.0.113.2:51999/' "$LAB_DIR/profiles/alpha.conf" > "$LAB_DIR/profiles/dead.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "dead.conf"\n' > "$LAB_DIR/profiles/dead.toml"
status_is "up with an endpoint that never answers fails" 1 nsvpn up dead --timeout 2
grep -q "no WireGuard handshake after 2.0 s with peer .* at 203.0.113.2:51999" /tmp/out && ok "the error names the endpoint and the wait" || { fail "the error names the endpoint and the wait"; cat /tmp/out; }
expect "nothing of dead is left" "" bash -c "ls /run/netns | grep nsvpn-dead; ip -br link | grep -- '-dead'; ls /etc/netns | grep dead; ls /run/nsvpn | grep dead; pgrep -af 'wireguard-go -f nsvt-dead'"
printf '[vpn]\nkind = "wireguard"\nconfig = "alpha.conf"\ncolour = "blue"\n' > "$LAB_DIR/profiles/typo.toml"
status_is "a profile with an unknown key is refused" 1 nsvpn up typo
grep -q 'field `vpn.colour`\|unknown field `colour`' /tmp/out && grep -q "typo.toml" /tmp/out && ok "the error names the file and the field" || { fail "the error names the file and the field"; cat /tmp/out; }
printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.2/32\nPostUp = touch /run/pwned\n[Peer]\nPublicKey = %s\n' "$(cat "$LAB_DIR/alpha/client.key")" "$(cat "$LAB_DIR/alpha/server.pub")" > "$LAB_DIR/profiles/hook.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "hook.conf"\n' > "$LAB_DIR/profiles/hook.toml"
status_is "a wg-quick file with PostUp is refused" 1 nsvpn up hook
grep -q "hook.conf): nsvpn never runs wg-quick hook commands" /tmp/out && grep -qx "  line 4: PostUp" /tmp/out && [ ! -e /run/pwned ] && ok "the error names the line; the hook did not run" || { fail "the error names the line; the hook did not run"; cat /tmp/out; }
expect "nothing of typo or hook is left" "" bash -c "ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep -E 'typo|hook'"
rm -f "$LAB_DIR"/profiles/{dead,typo,hook}.*

echo "# two WireGuard profiles with the same ListenPort"
# porta: bravo's file (bravo's gateway answers it) with a ListenPort, in
# bravo's place. portb: a fresh key, alpha's gateway and the same port: its
# configuration fails before any peer is set, so its gateway never hears of it.
check "down bravo (porta takes its place)" nsvpn down bravo
sed '/^\[Interface\]/a ListenPort = 51900' "$LAB_DIR/profiles/bravo.conf" > "$LAB_DIR/profiles/porta.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "porta.conf"\nuserspace = true\n' > "$LAB_DIR/profiles/porta.toml"
port_conf() {  # PORT: a wg-quick file with a fresh key that listens on PORT
  printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.3/32\nListenPort = %s\n[Peer]\nPublicKey = %s\nEndpoint = 203.0.113.2:51820\nAllowedIPs = 10.20.0.0/16\n' \
    "$(wg genkey)" "$1" "$(cat "$LAB_DIR/alpha/server.pub")"
}
port_conf 51900 > "$LAB_DIR/profiles/portb.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "portb.conf"\n' > "$LAB_DIR/profiles/portb.toml"
port_traces() { ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep -x -e nsvpn-portb -e portb; ip -br link | grep -- '-portb'; pgrep -af 'nsvt-portb'; ls /run/wireguard | grep portb; }
check "up porta, listening on 51900" nsvpn up porta
status_is "up portb, which wants 51900 too, fails" 1 nsvpn up portb --timeout 2
grep -q "portb.conf): ListenPort 51900 is in use by profile \"porta\", which is up" /tmp/out \
  && ok "... naming the port and the profile that holds it" || { fail "... naming the port and the profile that holds it"; cat /tmp/out; }
expect "nothing of portb is left" "" port_traces
expect "porta still reaches its database" bravo psql_side porta
python3 -c 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 51901)); time.sleep(60)' &
holder=$!
for _ in $(seq 100); do ss -lun 'sport = :51901' | grep -q 51901 && break; sleep 0.05; done
port_conf 51901 > "$LAB_DIR/profiles/portb.conf"
status_is "up portb on a port another program holds fails" 1 nsvpn up portb --timeout 2
grep -q "ListenPort 51901 is in use by another program on this machine (no nsvpn profile holds it): find it with \`ss -lunp 'sport = :51901'\`" /tmp/out \
  && ok "... saying so, and how to find it" || { fail "... saying so, and how to find it"; cat /tmp/out; }
expect "... and that command finds the program" "pid=$holder" bash -c "$(grep -o "ss -lunp 'sport = :51901'" /tmp/out | head -n 1) | grep -o 'pid=[0-9]*' | sort -u"
expect "nothing of portb is left" "" port_traces
kill "$holder"; wait "$holder" 2>/dev/null
check "down porta, up bravo again" bash -c "nsvpn down porta && nsvpn up bravo"
rm -f "$LAB_DIR"/profiles/port{a,b}.*

echo "# SIGINT, SIGTERM or SIGHUP during up: rolled back at once, said, non-zero"
# interrupted DESCRIPTION SIGNAL PROFILE MOMENT STATUS CMD...: starts CMD in
# the background as a terminal would (SIGINT not ignored), waits until
# `MOMENT PID` succeeds (at most 10 s), sends SIGNAL, and checks that CMD
# exits STATUS within 3 s saying it was interrupted and rolled back, and
# that nothing of PROFILE is left. The 3 s also show that the client did not
# inherit nsvpn's blocked signals (its SIGTERM would wait for SIGKILL, 5 s).
interrupted() {
  local d=$1 sig=$2 p=$3 moment=$4 want=$5; shift 5
  rm -f /run/client-sigblk
  env --default-signal=INT "$@" > /run/interrupted.out 2>&1 &
  local pid=$! t0 rc ms left
  for _ in $(seq 1000); do "$moment" "$pid" && break; sleep 0.01; done
  t0=$(date +%s%N); kill -s "$sig" "$pid"
  wait "$pid"; rc=$?; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  left=$(leftovers_of "$p")
  if [ "$rc" = "$want" ] && [ "$ms" -lt 3000 ] && [ -z "$left" ] &&
    grep -q "profile $p: interrupted by SIG$sig: rolled back everything this \`up\` created" /run/interrupted.out; then
    ok "$d"
  else
    fail "$d (exit $rc, wanted $want; $ms ms)"; sed 's/^/       /' /run/interrupted.out | tail -n 8
    [ -z "$left" ] || echo "$left" | sed 's/^/       left: /'
  fi
}
# The moments: nsvpn blocks the three signals (so it reads them); the
# namespace exists (plumbing); the client runs, 0.3 s into the wait for it
# (its blocked signals recorded on the way: openvpn's are what it inherited,
# wireguard-go's what the Go runtime set).
watching() { (( (0x$(awk '/^SigBlk/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0) & 0x4003) == 0x4003 )); }
has_netns() { [ -e /run/netns/nsvpn-dead ] || [ -e /run/netns/nsvpn-unreach ]; }
client_waits() {
  local c; c=$(pgrep -f -- '(wireguard-go|openvpn) .*nsvt-(dead|unreach)') || return 1
  sleep 0.3; awk '/^SigBlk/{print $2}' "/proc/$c/status" > /run/client-sigblk
}
sed 's/^Endpoint = .*/Endpoint = 203.0.113.2:51999/' "$LAB_DIR/profiles/alpha.conf" > "$LAB_DIR/profiles/dead.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "dead.conf"\nuserspace = true\n' > "$LAB_DIR/profiles/dead.toml"
sed 's/^remote .*/remote 203.0.113.10 1195/' "$LAB_DIR/profiles/charlie.ovpn" > "$LAB_DIR/profiles/unreach.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "unreach.ovpn"\nauth_file = "charlie.auth"\n' > "$LAB_DIR/profiles/unreach.toml"
interrupted "SIGINT as soon as up reads signals: status 130" INT dead watching 130 nsvpn up dead
interrupted "SIGTERM mid-plumbing: status 143" TERM dead has_netns 143 nsvpn up dead
interrupted "SIGHUP mid-plumbing: status 129" HUP dead has_netns 129 nsvpn up dead
interrupted "SIGINT while waiting for a WireGuard handshake that never comes" INT dead client_waits 130 nsvpn up dead --timeout 30
interrupted "SIGTERM while waiting for openvpn to reach an unreachable server" TERM unreach client_waits 143 nsvpn up unreach --timeout 30
expect "... openvpn ran with no signal blocked" "0000000000000000" cat /run/client-sigblk
interrupted "SIGHUP while waiting for openvpn" HUP unreach client_waits 129 nsvpn up unreach --timeout 30
interrupted "exec's automatic up, SIGINT during the handshake wait: status 125 like exec's other errors" INT dead client_waits 125 nsvpn exec dead -- true
interrupted "exec's automatic up, SIGTERM mid-plumbing: status 125" TERM dead has_netns 125 nsvpn exec dead -- true
# Waiting for the lock another nsvpn holds (flock stands in for it).
mkdir -p /run/nsvpn; flock /run/nsvpn/dead.lock sleep 30 & holder=$!
for _ in $(seq 100); do [ -e /run/nsvpn/dead.lock ] && break; sleep 0.01; done
env --default-signal=INT nsvpn up dead > /run/interrupted.out 2>&1 & pid=$!
for _ in $(seq 500); do grep -q "waiting for another nsvpn" /run/interrupted.out && break; sleep 0.01; done
t0=$(date +%s%N); kill -INT "$pid"; wait "$pid"; rc=$?; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill "$holder"; wait "$holder" 2>/dev/null; rm -f /run/nsvpn/dead.lock
[ "$rc" = 130 ] && [ "$ms" -lt 1000 ] && grep -q "profile dead: interrupted by SIGINT" /run/interrupted.out && [ -z "$(leftovers_of dead)" ] \
  && ok "SIGINT while waiting for another nsvpn's lock ends the wait at once" \
  || { fail "SIGINT while waiting for another nsvpn's lock ends the wait at once (exit $rc, $ms ms)"; cat /run/interrupted.out; leftovers_of dead; }
# A second Ctrl-C in the middle of the rollback: a process inside that
# ignores SIGTERM and SIGHUP keeps the rollback busy for 3 s (until SIGKILL).
env --default-signal=INT nsvpn up unreach --timeout 30 > /run/interrupted.out 2>&1 & pid=$!
for _ in $(seq 1000); do client_waits && break; sleep 0.01; done
setsid -f ip netns exec nsvpn-unreach sh -c 'trap "" TERM HUP; exec sleep 60'
for _ in $(seq 100); do [ -n "$(ip netns pids nsvpn-unreach)" ] && break; sleep 0.01; done
kill -INT "$pid"; sleep 1; kill -INT "$pid"
wait "$pid"; rc=$?
[ "$rc" = 130 ] && grep -q "interrupted by SIGINT: rolled back everything" /run/interrupted.out && [ -z "$(leftovers_of unreach)" ] \
  && ok "a second SIGINT during the rollback does not cut it short" \
  || { fail "a second SIGINT during the rollback does not cut it short (exit $rc)"; cat /run/interrupted.out; leftovers_of unreach; }
rm -f "$LAB_DIR"/profiles/{dead,unreach}.* /run/interrupted.out /run/client-sigblk

echo "# a name that is not a profile is an error that lists the known profiles"
known="known profiles: alpha, bravo, charlie, delta, echo"
typo_named() { grep -q "no profile \"alhpa\": .*/alhpa.toml does not exist ($known;" /tmp/out && ok "$1" || { fail "$1"; cat /tmp/out; }; }
status_is "status of a typo fails" 1 nsvpn status alhpa
typo_named "... naming the known profiles"
status_is "status --json of a typo fails" 1 nsvpn status --json alhpa
typo_named "... naming the known profiles"
expect "... with no made-up report on stdout" "" bash -c "nsvpn status --json alhpa 2>/dev/null"
status_is "down of a typo fails" 1 nsvpn down alhpa
typo_named "... naming the known profiles"
status_is "exec of a typo fails with 125" 125 nsvpn exec alhpa -- true
typo_named "... naming the known profiles"
expect "... and none of them made anything" "" leftovers_of alhpa
status_is "down of a profile that is not up stays a no-op" 0 nsvpn down charlie
grep -q "profile charlie is not up; nothing to do" /tmp/out && ok "... saying so" || { fail "... saying so"; cat /tmp/out; }
# Leftovers whose profile file is gone: an up killed with SIGKILL (no
# rollback), then the file deleted.
sed 's/^Endpoint = .*/Endpoint = 203.0.113.2:51999/' "$LAB_DIR/profiles/alpha.conf" > "$LAB_DIR/profiles/gone.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "gone.conf"\nuserspace = true\n' > "$LAB_DIR/profiles/gone.toml"
nsvpn up gone --timeout 30 > /dev/null 2>&1 & pid=$!
for _ in $(seq 500); do pgrep -f 'wireguard-go -f nsvt-gone' > /dev/null && break; sleep 0.01; done
kill -KILL "$pid"; wait "$pid" 2>/dev/null
rm -f "$LAB_DIR"/profiles/gone.*
expect "status of leftovers whose profile file was deleted says broken" "broken" bash -c "nsvpn status gone --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])'"
check "down of those leftovers removes them" nsvpn down gone
expect "... all of them" "" leftovers_of gone

echo "# a profile whose config file is missing: down for status and list (they read the profile's own file only), refused by up"
printf '[vpn]\nkind = "wireguard"\nconfig = "missing.conf"\n' > "$LAB_DIR/profiles/nocfg.toml"
states() { echo $(nsvpn status "$1" | sed -n "s/^profile $1: //p") $(nsvpn status "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])') $(nsvpn list | awk -v p="$1" '$1 == p {print $3}'); }
expect "status, status --json and list all say down" "down down down" states nocfg
status_is "up refuses it" 1 nsvpn up nocfg
grep -q '^nsvpn: error: profile "nocfg" (.*/nocfg.toml): field `vpn.config`: .*/missing.conf: No such file' /tmp/out \
  && ok "... naming the file and the field" || { fail "... naming the file and the field"; cat /tmp/out; }
expect "... and nothing of nocfg was made" "" leftovers_of nocfg
rm -f "$LAB_DIR/profiles/nocfg.toml"
echo "# status and list agree on a profile whose file does not parse"
printf '[vpn\nkind = "wireguard"\nconfig = "alpha.conf"\n' > "$LAB_DIR/profiles/badtoml.toml"
expect "status, status --json and list all say invalid" "invalid invalid invalid" states badtoml
check "status says why, naming the file and the line" bash -c "nsvpn status badtoml | grep -q '^  problem: profile \"badtoml\" (.*/badtoml.toml): line 1, column 5: '"
rm -f "$LAB_DIR/profiles/badtoml.toml"

echo "# a crashed up is cleaned by the next down"
nsvpn up bravo >/dev/null 2>&1   # already up
python3 - <<'PY'
import json
p='/run/nsvpn/bravo/state.json'; s=json.load(open(p)); s['complete']=False; json.dump(s, open(p,'w'))
PY
expect "status reports the unfinished up" "broken" bash -c "nsvpn status bravo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])'"
check "up after a crash removes the traces and comes up" nsvpn up bravo
expect "bravo works after the recovery" bravo psql_side bravo

# shellcheck source=suite-ipsec.sh
source "$here/suite-ipsec.sh"

# shellcheck source=suite-clients.sh
source "$here/suite-clients.sh"

# shellcheck source=suite-hostile.sh
source "$here/suite-hostile.sh"

# shellcheck source=suite-dns.sh
source "$here/suite-dns.sh"

# shellcheck source=suite-security.sh
source "$here/suite-security.sh"

# shellcheck source=suite-shell.sh
source "$here/suite-shell.sh"

# shellcheck source=suite-split.sh
source "$here/suite-split.sh"

# shellcheck source=suite-doctor.sh
source "$here/suite-doctor.sh"

# shellcheck source=suite-session.sh
source "$here/suite-session.sh"
# shellcheck source=suite-idle.sh
source "$here/suite-idle.sh"

echo "# down removes every trace"
check "down alpha" nsvpn down alpha
check "down bravo" nsvpn down bravo
check "down is idempotent" nsvpn down bravo
expect "no namespace, link, process, socket, file or mount is left" "" leftovers

summary
