# Sourced by suite.sh: OpenVPN and OpenConnect profiles against the lab's
# real openvpn server (charlie) and ocserv (delta), next to the WireGuard
# profile alpha; all three claim 10.20.0.0/16.

json_field() { nsvpn status "$1" --json | python3 -c "import json,sys; r=json.load(sys.stdin); print($2)"; }
new_lines() { tail -n +"$(($2 + 1))" "$1"; }
P=$LAB_DIR/profiles

echo "# OpenVPN and OpenConnect next to WireGuard, all on 10.20.0.0/16"
check "up charlie (OpenVPN, user name and password from auth_file)" nsvpn up charlie
check "up delta (OpenConnect to ocserv, password from password_file)" nsvpn up delta
expect "alpha (WireGuard) is up too" "up" json_field alpha 'r["state"]'
expect "charlie's psql reaches charlie's database by name" charlie psql_side charlie
expect "delta's psql reaches delta's database by name" delta psql_side delta
expect "alpha's psql still reaches alpha's database" alpha psql_side alpha
expect "the pushed route is inside charlie, on its tunnel" "10.20.0.0/16" bash -c "ip -n nsvpn-charlie -4 route show dev nsvt-charlie | grep -v '^10.8.0.0/24' | cut -d' ' -f1"
expect "the split-include route is inside delta, on its tunnel" "10.20.0.0/16" bash -c "ip -n nsvpn-delta -4 route show dev nsvt-delta | grep -v '^10.9.0.0/24' | cut -d' ' -f1"
expect "neither server provides IPv6: inside charlie and delta only lo has it" "lo ::1/128 lo ::1/128" bash -c "{ v6_of charlie; v6_of delta; } | xargs"
expect "the pushed DNS server and domain are charlie's resolv.conf" "nameserver 10.20.0.53 search internal" bash -c "nsvpn exec charlie -- grep -E '^(nameserver|search)' /etc/resolv.conf | tr '\n' ' ' | sed 's/ \$//'"
expect "ocserv's DNS server and default domain are delta's resolv.conf" "nameserver 10.20.0.53 search internal" bash -c "nsvpn exec delta -- grep -E '^(nameserver|search)' /etc/resolv.conf | tr '\n' ' ' | sed 's/ \$//'"
expect "a short name resolves through the pushed search domain" "10.20.9.2" bash -c "nsvpn exec charlie -- getent ahostsv4 only-charlie | awk 'NR==1{print \$1}'"
expect "the host's routes are unchanged" "$routes_before" host_routes
expect "the host's resolv.conf, hosts, nsswitch.conf are unchanged" "$resolv_before" sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf
expect "no tunnel device is left on the host" "" bash -c "ip -br link | grep nsvt-"
in_host_ns() { [ "$(readlink "/proc/$(json_field "$1" 'r["pid"]')/ns/net")" = "$(readlink /proc/self/ns/net)" ]; }
check "openvpn runs in the host namespace (its socket uses the uplink)" in_host_ns charlie
check "openconnect runs in the host namespace too" in_host_ns delta
expect "status reports openvpn's pid, connected, and traffic" "openvpn True True True" json_field charlie 'r["client"], r["pid"] > 0, r["tunnel"]["connected"], r["traffic"]["rx_bytes"] > 0'
expect "status reports openconnect's pid and connected" "openconnect True" json_field delta 'r["client"], r["tunnel"]["connected"]'
check "status text shows the tunnel and transfer lines" bash -c "nsvpn status charlie | grep -q '^  tunnel         connected' && nsvpn status charlie | grep -q '^  transfer '"
check "the client's log is kept in /run/nsvpn while up" test -s /run/nsvpn/charlie/openvpn.log

echo "# the profile's [routes] and [dns] win over what the server pushes"
sed 's/^description.*/description = "charlie with overrides"/' "$P/charlie.toml" > "$P/charlie-o.toml"
printf '[routes]\ninclude = ["10.20.1.5/32"]\n[dns]\nservers = ["10.20.0.53"]\nsearch = ["override.example"]\n' >> "$P/charlie-o.toml"
sed 's/^description.*/description = "delta with overrides"/' "$P/delta.toml" > "$P/delta-o.toml"
printf '[routes]\ninclude = ["10.20.1.0/24"]\n[dns]\nsearch = ["corp.example"]\n' >> "$P/delta-o.toml"
check "up charlie-o" nsvpn up charlie-o
check "up delta-o" nsvpn up delta-o
expect "charlie-o has only the profile's route" "10.20.1.5" bash -c "ip -n nsvpn-charlie-o -4 route show dev nsvt-charlie-o | grep -v '^10.8.0.0/24' | cut -d' ' -f1"
expect "charlie-o has the profile's search domain" "search override.example" bash -c "nsvpn exec charlie-o -- grep ^search /etc/resolv.conf"
expect "charlie-o still reaches the database through its /32" charlie bash -c "nsvpn exec charlie-o -- psql -h 10.20.1.5 -U lab -d lab -Atc 'select name from side'"
expect "delta-o has only the profile's route" "10.20.1.0/24" bash -c "ip -n nsvpn-delta-o -4 route show dev nsvt-delta-o | grep -v '^10.9.0.0/24' | cut -d' ' -f1"
expect "delta-o keeps the pushed DNS server but the profile's search domain" "nameserver 10.20.0.53 search corp.example" bash -c "nsvpn exec delta-o -- grep -E '^(nameserver|search)' /etc/resolv.conf | tr '\n' ' ' | sed 's/ \$//'"
check "down charlie-o" nsvpn down charlie-o
check "down delta-o" nsvpn down delta-o

echo "# configs that would act on the host are refused, and nothing runs"
grep -v '^verb' "$P/charlie.ovpn" > "$P/evil.ovpn"
printf 'script-security 2\nup "/bin/touch /run/pwned-up"\nroute-up /bin/true\nplugin /usr/lib/openvpn/openvpn-plugin-down-root.so /bin/true\n' >> "$P/evil.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "evil.ovpn"\nauth_file = "charlie.auth"\n' > "$P/evil.toml"
status_is "a .ovpn with up/route-up/plugin/script-security is refused" 1 nsvpn up evil
grep -q 'evil.ovpn' /tmp/out && grep -q 'line [0-9]*: `up` is not allowed' /tmp/out && grep -q '`plugin` is not allowed' /tmp/out && [ ! -e /run/pwned-up ] \
  && ok "the error names the file and each line; nothing ran" || { fail "the error names the file and each line; nothing ran"; cat /tmp/out; }
# The forms that got past the old deny-list, against the real server: a
# script that would record the uid it ran as.
printf '#!/bin/sh\nid -u > /run/pwned-uid\n' > /run/evil.sh; chmod 755 /run/evil.sh
{ printf '\xef\xbb\xbfroute-up /run/evil.sh\n'; grep -v '^verb' "$P/charlie.ovpn"; printf 'setenv opt down /run/evil.sh\nsetenv opt up /run/evil.sh\n'; } > "$P/evil2.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "evil2.ovpn"\nauth_file = "charlie.auth"\n' > "$P/evil2.toml"
status_is "a .ovpn with a BOM before route-up and setenv opt up/down is refused" 1 nsvpn up evil2
grep -q 'line 1: `route-up` is not allowed' /tmp/out && grep -q '`setenv opt down` is not allowed' /tmp/out && grep -q '`setenv opt up` is not allowed' /tmp/out \
  && [ ! -e /run/pwned-uid ] && ok "... naming all three lines; the script never ran" || { fail "... naming all three lines; the script never ran"; cat /tmp/out; cat /run/pwned-uid 2>/dev/null; }
rm -f /run/evil.sh /run/pwned-uid "$P"/evil2.*
printf '[vpn]\nkind = "openvpn"\nconfig = "charlie.ovpn"\n' > "$P/noauth.toml"
status_is "a .ovpn that asks for a password, without auth_file, is refused" 1 nsvpn up noauth
grep -q 'field `vpn.auth_file`' /tmp/out && ok "the error names vpn.auth_file" || { fail "the error names vpn.auth_file"; cat /tmp/out; }
sed 's|^args = \[|args = ["--script", "/usr/share/vpnc-scripts/vpnc-script", |' "$P/delta.toml" > "$P/eviloc.toml"
status_is "openconnect args that replace nsvpn's script are refused" 1 nsvpn up eviloc
grep -q 'field `vpn.args`' /tmp/out && grep -q 'args\[0\] = "--script"' /tmp/out && ok "the error names the argument" || { fail "the error names the argument"; cat /tmp/out; }
expect "nothing of evil, noauth or eviloc is left" "" bash -c "ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep -E 'evil|noauth'; ip -br link | grep -E 'evil|noauth'"

echo "# failures are clear, bounded, and leave nothing"
(umask 077; printf '%s\nwrong password\n' "$LAB_USER" > "$P/badpw.auth")
printf '[vpn]\nkind = "openvpn"\nconfig = "charlie.ovpn"\nauth_file = "badpw.auth"\n' > "$P/badpw.toml"
start=$(date +%s)
status_is "OpenVPN with a wrong password fails" 1 nsvpn up badpw
grep -q "openvpn did not connect: it exited after .*: authentication failed" /tmp/out && grep -q "AUTH_FAILED" /tmp/out \
  && ok "... saying authentication failed, with openvpn's log" || { fail "... saying authentication failed, with openvpn's log"; cat /tmp/out; }
[ $(($(date +%s) - start)) -lt 10 ] && ok "... at once, not after the timeout" || fail "... at once, not after the timeout"
(umask 077; echo "wrong password" > "$P/badpw-oc.password")
sed 's/^password_file = .*/password_file = "badpw-oc.password"/' "$P/delta.toml" > "$P/badpw-oc.toml"
status_is "OpenConnect with a wrong password fails" 1 nsvpn up badpw-oc
grep -q "openconnect did not connect: it exited after .*: authentication failed" /tmp/out && grep -q "Login failed" /tmp/out \
  && ok "... saying authentication failed, with openconnect's log" || { fail "... saying authentication failed, with openconnect's log"; cat /tmp/out; }
sed 's/^remote .*/remote 203.0.113.10 1195/' "$P/charlie.ovpn" > "$P/unreach.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "unreach.ovpn"\nauth_file = "charlie.auth"\n' > "$P/unreach.toml"
start=$(date +%s)
status_is "OpenVPN to a server that is not there fails within --timeout" 1 nsvpn up unreach --timeout 3
grep -q "no connection after 3.0 s .*server unreachable" /tmp/out && ok "... saying the server is unreachable" || { fail "... saying the server is unreachable"; cat /tmp/out; }
[ $(($(date +%s) - start)) -lt 10 ] && ok "... in bounded time" || fail "... in bounded time"
sed 's|^server = .*|server = "https://203.0.113.14:444"|' "$P/delta.toml" > "$P/unreach-oc.toml"
status_is "OpenConnect to a server that is not there fails" 1 nsvpn up unreach-oc
grep -q "server unreachable" /tmp/out && ok "... saying the server is unreachable" || { fail "... saying the server is unreachable"; cat /tmp/out; }
grep -v '^args' "$P/delta.toml" > "$P/nopin.toml"
status_is "OpenConnect to a server whose certificate is not trusted fails" 1 nsvpn up nopin
grep -q "certificate rejected" /tmp/out && grep -q -- '--servercert' /tmp/out && ok "... saying the certificate was rejected, with the pin to add" || { fail "... saying the certificate was rejected, with the pin to add"; cat /tmp/out; }
expect "nothing of the failed profiles is left" "" bash -c "ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep -E 'badpw|unreach|nopin'; ip -br link | grep -E 'badpw|unreach|nopin'; ps -eo args= | grep -E '^[^ ]*/open(vpn|connect) .*nsvt-(badpw|unreach|nopin)'"
rm -f "$P"/{evil,noauth,eviloc,badpw,badpw-oc,unreach,unreach-oc,nopin,charlie-o,delta-o}.*

echo "# a .ovpn with several servers: the next is tried within up's wait"
sed 's/^remote .*/remote 203.0.113.10 1195\nremote 203.0.113.10 1194/' "$P/charlie.ovpn" > "$P/two.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "two.ovpn"\nauth_file = "charlie.auth"\n' > "$P/two.toml"
start=$(date +%s)
check "up with the first server dead connects to the second, within the default wait" nsvpn up two
[ $(($(date +%s) - start)) -lt 20 ] && ok "... in less than 20 s" || fail "... in less than 20 s"
check "... openvpn's log shows both servers tried" bash -c "grep -q 'link remote: .*203.0.113.10:1195' /run/nsvpn/two/openvpn.log && grep -q 'link remote: .*203.0.113.10:1194' /run/nsvpn/two/openvpn.log"
expect "two reaches charlie's database" charlie psql_side two
check "down two" nsvpn down two
sed 's/^remote .*/remote 203.0.113.10 1195\nremote 203.0.113.10 1196/' "$P/charlie.ovpn" > "$P/dead2.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "dead2.ovpn"\nauth_file = "charlie.auth"\n' > "$P/dead2.toml"
status_is "up with every server dead fails" 1 nsvpn up dead2 --timeout 4
grep -q "the .ovpn lists 2 servers (203.0.113.10 1195/udp, 203.0.113.10 1196/udp); openvpn tried 203.0.113.10:1195, 203.0.113.10:1196" /tmp/out \
  && ok "... naming the servers it tried" || { fail "... naming the servers it tried"; cat /tmp/out; }
expect "nothing of two or dead2 is left" "" bash -c "ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep -E 'two|dead2'; ip -br link | grep -E 'two|dead2'"

echo "# options that would make root write or listen are replaced, and nothing is written"
{ cat "$P/charlie.ovpn"; printf 'log /run/pwned-log\nlog-append /run/pwned-log2\nstatus /run/pwned-status 1\nwritepid /run/pwned-pid\nmanagement 127.0.0.1 7505\ndaemon\nsyslog\n'; } > "$P/noisy.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "noisy.ovpn"\nauth_file = "charlie.auth"\n' > "$P/noisy.toml"
status_is "up of a .ovpn with log, status, writepid, management on TCP, daemon, syslog" 0 nsvpn up noisy
grep -q '`log`, .*`log-append`, .*`syslog` are left out: nsvpn keeps openvpn.s log' /tmp/out && grep -q '`management` is left out' /tmp/out && grep -q '`daemon` is left out' /tmp/out \
  && ok "... each is said to be left out" || { fail "... each is said to be left out"; cat /tmp/out; }
expect "no file was written where the .ovpn said, nothing listens on TCP 7505" "" bash -c "ls /run/pwned-* 2>/dev/null; ss -ltnH 'sport = :7505'"
expect "openvpn's log is nsvpn's, its management socket the profile's, in a root-only directory" "yes socket 700 root" \
  bash -c "grep -q 'Initialization Sequence Completed' /run/nsvpn/noisy/openvpn.log && echo -n 'yes '; stat -c '%F' /run/nsvpn/noisy/private/openvpn.sock | tr -d '\n'; stat -c ' %a %U' /run/nsvpn/noisy/private"
expect "noisy reaches charlie's database" charlie psql_side noisy
check "down noisy" nsvpn down noisy
rm -f "$P"/{two,dead2,noisy}.*

echo "# the server restarts or drops the connection; the client recovers by itself"
# A provider's file that drops privileges (user/group with persist-tun) is
# up at the same time: nsvpn leaves user/group out and says so, so that
# openvpn can re-run nsvpn's hook at the reconnect.
{ grep -v '^verb' "$P/charlie.ovpn"; printf 'user nobody\ngroup nogroup\npersist-tun\npersist-key\nverb 3\n'; } > "$P/nobody.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "nobody.ovpn"\nauth_file = "charlie.auth"\n' > "$P/nobody.toml"
status_is "up of a .ovpn with user nobody, group nogroup and persist-tun" 0 nsvpn up nobody
grep -q 'line [0-9]* `user`, line [0-9]* `group` are left out: openvpn stays root' /tmp/out \
  && ok "... says that user and group are left out, and why" || { fail "... says that user and group are left out, and why"; cat /tmp/out; }
expect "... so openvpn still runs as root" "0" bash -c "ps -o uid= -p \$(nsvpn status nobody --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"pid\"])') | tr -d ' '"
mark=$(wc -l < /run/nsvpn/charlie/openvpn.log)
# Killed: no exit notification, openvpn finds out by its ping timeout.
kill -9 "$(cat "$LAB_DIR/charlie/server.pid")"
reconnecting() { for _ in $(seq 100); do [ "$(json_field "$1" 'r["state"]')" = reconnecting ] && return 0; sleep 0.25; done; return 1; }
check "with the OpenVPN server gone, status says charlie is reconnecting" reconnecting charlie
expect "... since when, and the last error (connection refused)" "True True False" \
  json_field charlie 'r["tunnel"]["reconnecting_since"] > 0, "connection was refused" in (r["tunnel"]["last_error"] or ""), r["tunnel"]["connected"]'
check "... the text says it too" bash -c "nsvpn status charlie > /run/st.txt; grep -q '^  tunnel         reconnecting since [0-9]* s ago' /run/st.txt && grep -q 'problem: openvpn reconnecting since .*last error: server unreachable' /run/st.txt"
expect "... list says reconnecting" "reconnecting" bash -c "nsvpn list | awk '\$1==\"charlie\"{print \$3}'"
status_is "... exec still runs the command" 0 as_user nsvpn exec charlie -- true
grep -q "nsvpn: warning: profile charlie: openvpn reconnecting since" /tmp/out && ok "... with a warning that it is reconnecting" || { fail "... with a warning that it is reconnecting"; cat /tmp/out; }
lab_openvpn_server charlie
back() { for _ in $(seq 40); do [ "$(timeout 5 bash -c "psql_side $1" 2>/dev/null)" = "${2:-$1}" ] && return 0; sleep 0.5; done; return 1; }
export -f psql_side as_user
check "charlie works again after the OpenVPN server restarted" back charlie
check "the profile with user nobody and persist-tun works again too" back nobody charlie
both_connected() { json_field charlie 'r["state"], r["tunnel"]["connected"]'; json_field nobody 'r["state"], r["tunnel"]["connected"]'; }
expect "... and both are up, connected" "up True
up True" both_connected
check "down nobody" nsvpn down nobody
rm -f "$P"/nobody.* /run/st.txt
check "openvpn re-ran nsvpn's hook for the new tunnel" bash -c "new_lines() { tail -n +\$((\$2 + 1)) \"\$1\"; }; new_lines /run/nsvpn/charlie/openvpn.log $mark | grep -q 'nsvpn hook: connect: nsvt-charlie moved into nsvpn-charlie'"
ip netns exec lab-gw-delta pkill -9 -f ocserv-worker
check "delta works again after ocserv dropped the connection" back delta
expect "status counts the reconnect" "True 2" json_field delta 'r["tunnel"]["connected"], r["tunnel"]["connects"]'

echo "# a dead client leaves the namespace sealed; down and up recover"
for p in charlie delta; do
  pid=$(json_field $p 'r["pid"]')
  kill -9 "$pid"; for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  expect "$p: status says broken, the client is not running" "broken True" json_field $p 'r["state"], any("is not running" in x for x in r["problems"])'
  unreachable "$p: the database is unreachable from inside" inside $p ping -c1 -W1 10.20.1.5
  unreachable "$p: the gateway is unreachable from inside" inside $p ping -c1 -W1 203.0.113.10
  no_escape $p
  status_is "$p: exec is refused while broken" 125 as_user nsvpn exec $p -- true
  expect "$p: list says broken" "broken" bash -c "nsvpn list | awk '\$1==\"$p\"{print \$3}'"
  check "$p: down cleans up" nsvpn down $p
  check "$p: up works again" nsvpn up $p
  expect "$p: its database is back" $p psql_side $p
done

# shellcheck source=suite-secrets.sh
source "$here/suite-secrets.sh"

echo "# down stops the client gracefully: the server sees the logout"
mark=$(wc -l < "$LAB_DIR/charlie/server.log")
check "down charlie" nsvpn down charlie
check "the OpenVPN server got the exit notification" bash -c "for _ in \$(seq 40); do tail -n +$((mark + 1)) $LAB_DIR/charlie/server.log | grep -q 'exit message received by peer' && exit 0; sleep 0.1; done; exit 1"
expect "ocserv has delta's session before down" "1" bash -c "ip netns exec lab-gw-delta occtl -s $LAB_DIR/delta/occtl.sock show users | grep -c ' $LAB_USER '"
check "down delta" nsvpn down delta
expect "ocserv has no session after down (openconnect said BYE)" "0" bash -c "ip netns exec lab-gw-delta occtl -s $LAB_DIR/delta/occtl.sock show users | grep -c ' $LAB_USER '"

echo "# OpenVPN over TCP, net30 topology, redirect-gateway pushed"
lab_stop_server charlie
sed -i 's/^proto udp/proto tcp-server/; s/^topology subnet/topology net30/; s/^push "route 10.20.0.0 255.255.0.0"/push "redirect-gateway def1"/; s/^explicit-exit-notify 1//' "$LAB_DIR/charlie/server.conf"
lab_openvpn_server charlie
sed 's/^proto udp/proto tcp-client/' "$P/charlie.ovpn" > "$P/tcp.ovpn"
printf '[vpn]\nkind = "openvpn"\nconfig = "tcp.ovpn"\nauth_file = "charlie.auth"\n' > "$P/tcp.toml"
check "up tcp (OpenVPN over TCP)" nsvpn up tcp
check "the p2p address has its peer" bash -c "ip -n nsvpn-tcp -4 addr show dev nsvt-tcp | grep -Eq 'inet 10\.8\.0\.[0-9]+ peer 10\.8\.0\.[0-9]+/32'"
expect "redirect-gateway became the namespace's default route, on the tunnel" "default dev nsvt-tcp" bash -c "ip -n nsvpn-tcp route show default | cut -d' ' -f1-3"
expect "tcp reaches charlie's database" charlie psql_side tcp
expect "the host's routes are unchanged: redirect-gateway took none, its default route is still its own" "$routes_before" host_routes
check "down tcp" nsvpn down tcp
rm -f "$P"/tcp.*
