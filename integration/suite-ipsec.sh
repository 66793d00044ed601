# IPsec/IKEv2 (issue 18), sourced by suite.sh: the lab's strongSwan gateway
# echo, reached by a charon of the profile's own on the host (kernel-libipsec,
# its TUN moved into the namespace). The kernel (XFRM interface) path is not
# here: these machines have no xfrm_interface module.
echo "# IPsec: an IKEv2 profile (strongSwan, pre-shared key) beside the other kinds"
P=$LAB_DIR/profiles
ipsec_json() { nsvpn status "$1" --json | python3 -c "import json,sys; r=json.load(sys.stdin); print($2)"; }
gw_sas() { swanctl --list-sas --uri "unix://$LAB_DIR/echo/charon.vici" 2>/dev/null | grep -c "ESTABLISHED"; }
charon_of() { pgrep -f "^/usr/lib/ipsec/charon nsvt-$1\$"; }
xfrm_before=$(ip xfrm policy 2>&1; ip xfrm state 2>&1)
rules_before=$(ip rule; ip -6 rule)
t220_before=$(ip route show table 220 2>&1)
ipsec_routes_before=$(host_routes)
ipsec_resolv_before=$(sha256sum /etc/resolv.conf)
# Those already up (WireGuard's alpha and bravo in suite.sh) stay up; the
# OpenVPN and OpenConnect profiles come up for this and go down after.
already=$(nsvpn list | awk 'NR > 1 && $3 == "up" {print $1}' | xargs)
others=""
for p in charlie delta; do [ -f "$P/$p.toml" ] && others+=" $p"; done
for p in $others; do check "up $p" nsvpn up $p; done
check "up echo (IPsec, PSK)" nsvpn up echo
for p in $already $others echo; do expect "$p's psql reaches $p's database by name, all up at once on 10.20.0.0/16" $p psql_side $p; done
expect "the virtual IP from the gateway's pool is on echo's tunnel, inside" "nsvt-echo 10.7.0.1/32" bash -c "ip -n nsvpn-echo -4 -br addr show dev nsvt-echo | awk '{print \$1, \$3}'"
expect "the gateway's network is routed inside, on the tunnel" "10.20.0.0/16" bash -c "ip -n nsvpn-echo -4 route show dev nsvt-echo | cut -d' ' -f1"
expect "DNS from the configuration payload is echo's resolv.conf" "nameserver 10.20.0.53" bash -c "nsvpn exec echo -- grep ^nameserver /etc/resolv.conf"
expect "charon runs in the host namespace" "$(readlink /proc/self/ns/net)" bash -c "readlink /proc/\$(pgrep -f '^/usr/lib/ipsec/charon nsvt-echo\$')/ns/net"
expect "the host's routes are unchanged" "$ipsec_routes_before" host_routes
expect "the host's XFRM policies and states are unchanged" "$xfrm_before" bash -c "ip xfrm policy 2>&1; ip xfrm state 2>&1"
expect "the host's table 220 is unchanged" "$t220_before" ip route show table 220
expect "the host's resolv.conf is unchanged" "$ipsec_resolv_before" sha256sum /etc/resolv.conf
new_rules() { diff <(echo "$rules_before") <(ip rule; ip -6 rule) | grep '^>' | sed 's/^> [0-9]*:\s*//' | sort -u; }
expect "the host's only new rules are charon's, for packets with its mark only (nothing sets it), to its own table" \
  "from all fwmark $(printf '%#x' "$(ip rule | awk '/fwmark/{print $NF; exit}')") lookup $(ip rule | awk '/fwmark/{print $NF; exit}')" new_rules
expect "that table is empty once the TUN moved into the namespace" "" bash -c "ip route show table all | grep nsvt-echo; ip route show table all | grep -w ipsec0"
expect "status shows the virtual IP and the client" "['nsvt-echo 10.7.0.1/32'] charon" ipsec_json echo '[a["interface"] + " " + a["address"] for a in r["addresses"] if a["address"].startswith("10.7")], r["client"]'
expect "the gateway has the SA" "1" gw_sas

echo "# IPsec: the kill switch (charon killed: nothing leaves)"
pid=$(charon_of echo)
kill -9 "$pid"; for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
expect "echo: status says broken, charon is not running" "broken True" ipsec_json echo 'r["state"], any("is not running" in x for x in r["problems"])'
unreachable "echo: the database is unreachable from inside" inside echo ping -c1 -W1 10.20.1.5
unreachable "echo: the gateway is unreachable from inside" inside echo ping -c1 -W1 203.0.113.18
no_escape echo
status_is "echo: exec is refused while broken" 125 as_user nsvpn exec echo -- true
check "echo: down cleans up" nsvpn down echo
expect "echo: nothing is left, not even the rule the killed charon left" "" leftovers_of echo
expect "the host's rules are as before" "$rules_before" bash -c "ip rule; ip -6 rule"
check "echo: up works again" nsvpn up echo
expect "echo: its database is back" echo psql_side echo

echo "# IPsec: failures say why and leave nothing"
rules_echo_up=$(ip rule; ip -6 rule)
failed_leftovers() { leftovers_of badpsk; leftovers_of ipsecdown; ls /run/nsvpn 2>/dev/null | grep -E 'badpsk|ipsecdown'; true; }
(umask 077; echo "not the key" > "$P/badpsk.psk")
sed 's/^psk_file = .*/psk_file = "badpsk.psk"/' "$P/echo.toml" > "$P/badpsk.toml"
start=$(date +%s)
status_is "IPsec with a wrong pre-shared key fails" 1 nsvpn up badpsk
grep -q "charon did not connect: authentication failed" /tmp/out && grep -q "AUTHENTICATION_FAILED" /tmp/out \
  && ok "... saying authentication failed, with charon's words" || { fail "... saying authentication failed, with charon's words"; cat /tmp/out; }
[ $(($(date +%s) - start)) -lt 10 ] && ok "... at once, not after the timeout" || fail "... at once, not after the timeout"
sed 's/^server = .*/server = "203.0.113.14"/' "$P/echo.toml" > "$P/ipsecdown.toml"
start=$(date +%s)
status_is "IPsec to a gateway that is down fails" 1 nsvpn up ipsecdown
grep -q "charon did not connect: peer unreachable" /tmp/out && ok "... saying the peer is unreachable" || { fail "... saying the peer is unreachable"; cat /tmp/out; }
[ $(($(date +%s) - start)) -lt 20 ] && ok "... in bounded time (charon's retransmits, about 8 s)" || fail "... in bounded time"
expect "nothing of the failed IPsec profiles is left" "" failed_leftovers
expect "no rule of theirs is left (only echo's)" "$rules_echo_up" bash -c "ip rule; ip -6 rule"
rm -f "$P"/{badpsk,ipsecdown}.*

echo "# IPsec: down deletes the SA (the gateway sees it) and leaves nothing"
expect "the gateway has echo's SA before down" "1" gw_sas
check "down echo" nsvpn down echo
expect "the gateway has no SA after down" "0" gw_sas
expect "down leaves nothing of echo (no process, rule, link, file)" "" leftovers_of echo
for p in $others; do check "down $p" nsvpn down $p; done
expect "the host's routes are as before" "$ipsec_routes_before" host_routes
expect "the host's rules are as before" "$rules_before" bash -c "ip rule; ip -6 rule"
expect "the host's XFRM policies and states are as before" "$xfrm_before" bash -c "ip xfrm policy 2>&1; ip xfrm state 2>&1"
