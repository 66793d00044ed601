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

echo "# IPsec: status shows the IKE and CHILD SA, the virtual IP and traffic (list-sas over VICI)"
expect "status --json: IKE_SA established with the gateway, CHILD_SA installed, the virtual IP" "ESTABLISHED 203.0.113.18 echo.lab INSTALLED ['10.20.0.0/16'] ['10.7.0.1']" \
  ipsec_json echo 'r["ipsec"]["ike_state"], r["ipsec"]["remote_host"], r["ipsec"]["remote_id"], r["ipsec"]["child"]["state"], r["ipsec"]["child"]["remote_ts"], r["ipsec"]["vips"]'
check "status --json: the CHILD_SA counted the traffic in and out" bash -c "[ \"\$(nsvpn status echo --json | python3 -c 'import json,sys; c=json.load(sys.stdin)[\"ipsec\"][\"child\"]; print(c[\"bytes_in\"] > 0 and c[\"bytes_out\"] > 0 and c[\"packets_in\"] > 0)')\" = True ]"
check "status (text) shows the SAs and the virtual IP" bash -c "nsvpn status echo | grep -q '^  ike sa         ESTABLISHED with 203.0.113.18 (echo.lab) for ' && nsvpn status echo | grep -q '^  child sa       #[0-9]* INSTALLED' && nsvpn status echo | grep -q '^  virtual ip     10.7.0.1\$'"

echo "# IPsec: a certificate (carol@lab, signed by the gateway's CA) and EAP-MD5 (dave), each a connection of the same gateway"
cat > "$P/echocert.toml" <<TOML
[vpn]
kind = "ipsec"
server = "$(lab_gw_ip 4)"
local_id = "carol@lab"
remote_id = "echo.lab"
cert_file = "echo-carol.crt"
key_file = "echo-carol.key"
ca_file = "echo-ca.crt"
TOML
cat > "$P/echoeap.toml" <<TOML
[vpn]
kind = "ipsec"
server = "$(lab_gw_ip 4)"
remote_id = "echo.lab"
user = "dave"
password_file = "echo.password"
ca_file = "echo-ca.crt"
TOML
gw_ids() { swanctl --list-sas --uri "unix://$LAB_DIR/echo/charon.vici" 2>/dev/null | sed -n "s/^  remote '\([^']*\)'.*/\1/p" | sort | xargs; }
check "up echocert (certificate)" nsvpn up echocert
check "up echoeap (EAP)" nsvpn up echoeap
for p in echocert echoeap; do expect "$p's psql reaches echo's database by name" echo psql_side $p; done
expect "the gateway authenticated each by its own connection" "alice@lab carol@lab dave" gw_ids
expect "echocert's status: the gateway's identity, its CHILD_SA" "echo.lab INSTALLED" ipsec_json echocert 'r["ipsec"]["remote_id"], r["ipsec"]["child"]["state"]'
check "down echocert, echoeap" bash -c "nsvpn down echocert && nsvpn down echoeap"
both_left() { leftovers_of echocert; leftovers_of echoeap; }
expect "nothing of them is left" "" both_left

echo "# IPsec: EAP-MSCHAPv2 (erin) and an ECDSA certificate (frank@lab), each a connection of the same gateway"
cat > "$P/echomschap.toml" <<TOML
[vpn]
kind = "ipsec"
server = "$(lab_gw_ip 4)"
remote_id = "echo.lab"
user = "erin"
password_file = "echo.password"
ca_file = "echo-ca.crt"
TOML
cat > "$P/echoecdsa.toml" <<TOML
[vpn]
kind = "ipsec"
server = "$(lab_gw_ip 4)"
local_id = "frank@lab"
remote_id = "echo.lab"
cert_file = "echo-frank.crt"
key_file = "echo-frank.key"
ca_file = "echo-ca.crt"
TOML
gw_log() { grep -c -- "$1" "$LAB_DIR/echo/charon.log"; }
mschap_before=$(gw_log "EAP method EAP_MSCHAPV2 succeeded, MSK established")
ecdsa_before=$(gw_log "authentication of 'frank@lab' with ECDSA_WITH_SHA256_DER successful")
# One after the other: while a second charon's TUN comes and goes on the
# host, the first one's kernel-netlink sees it and sends MOBIKE address
# updates (see lab-notes-ipsec.md).
check "up echomschap (EAP-MSCHAPv2)" nsvpn up echomschap
expect "echomschap's psql reaches echo's database by name" echo psql_side echomschap
check "up echoecdsa (ECDSA certificate)" nsvpn up echoecdsa
expect "echoecdsa's psql reaches echo's database by name" echo psql_side echoecdsa
expect "the gateway ran EAP-MSCHAPv2 with erin (MSK established)" "$((mschap_before + 1))" gw_log "EAP method EAP_MSCHAPV2 succeeded, MSK established"
expect "the gateway checked frank@lab's ECDSA signature" "$((ecdsa_before + 1))" gw_log "authentication of 'frank@lab' with ECDSA_WITH_SHA256_DER successful"
(umask 077; echo "not the password" > "$P/badmschap.password")
sed 's/^password_file = .*/password_file = "badmschap.password"/' "$P/echomschap.toml" > "$P/badmschap.toml"
status_is "EAP-MSCHAPv2 with a wrong password fails" 1 nsvpn up badmschap
grep -q "authentication failed: the gateway refused the user name or password (check vpn.user and vpn.password_file)" /tmp/out \
  && ok "... saying the gateway refused the user name or password" || { fail "... saying the gateway refused the user name or password"; cat /tmp/out; }
expect "... and leaves nothing of badmschap" "" leftovers_of badmschap
check "down echomschap, echoecdsa" bash -c "nsvpn down echomschap && nsvpn down echoecdsa"
both_left() { leftovers_of echomschap; leftovers_of echoecdsa; }
expect "nothing of them is left" "" both_left
rm -f "$P"/{echomschap,echoecdsa,badmschap}.*

echo "# IPsec: a provider's swanctl.conf used as is (a certificate; and a pre-shared key in a CRLF file with a BOM)"
cat > "$P/echo-swan.conf" <<CONF
# Exported from the customer's VPN portal: carol's connection.
connections {
  customer {
    remote_addrs = $(lab_gw_ip 4)
    vips = 0.0.0.0
    proposals = default
    local {
      auth = pubkey
      certs = echo-carol.crt
      id = carol@lab
    }
    remote {
      auth = pubkey
      id = "echo.lab"
      cacerts = echo-ca.crt
    }
    children {
      customer-net {
        remote_ts = 10.20.0.0/16
        esp_proposals = default
        start_action = trap   # nsvpn starts it itself
        dpd_action = restart
      }
    }
  }
}
secrets {
  private-carol {
    file = echo-carol.key
  }
}
CONF
{ printf '\xef\xbb\xbf'; sed 's/$/\r/' <<CONF
# Two offices; the profile names which (connection = "lab").
connections {
  office {
    remote_addrs = 203.0.113.99
    local {
      auth = psk
      id = grace@lab
    }
    children {
      net {
      }
    }
  }
  lab
  {
    remote_addrs = $(lab_gw_ip 4)
    local {
      auth = psk
      id = grace@lab
    }
    remote {
      auth = psk
      id = echo.lab
    }
    children {
      net {
        remote_ts = 10.20.0.0/16
        esp_proposals = default
      }
    }
  }
}
secrets {
  ike-grace {
    id-1 = grace@lab
    id-2 = echo.lab
    secret = "$LAB_PASSWORD"
  }
}
CONF
} > "$P/echo-swan-crlf.conf"
chmod 600 "$P/echo-swan-crlf.conf"
printf '[vpn]\nkind = "ipsec"\nconfig = "echo-swan.conf"\n' > "$P/echoswan.toml"
printf '[vpn]\nkind = "ipsec"\nconfig = "echo-swan-crlf.conf"\nconnection = "lab"\n' > "$P/echoswancrlf.toml"
status_is "up echoswan (swanctl.conf, certificate)" 0 nsvpn up echoswan
grep -q "nsvpn: warning: .*echo-swan.conf: line 21: \`connections.customer.children.customer-net.start_action\` left out: nsvpn starts the connection itself" /tmp/out \
  && ok "... warning that start_action was left out, naming the file, the line and the key" || { fail "... warning that start_action was left out"; cat /tmp/out; }
check "up echoswancrlf (swanctl.conf with CRLF and a BOM, pre-shared key, one of two connections)" nsvpn up echoswancrlf
for p in echoswan echoswancrlf; do expect "$p's psql reaches echo's database by name" echo psql_side $p; done
files_ids() { gw_ids | tr ' ' '\n' | grep -x -e carol@lab -e grace@lab | xargs; }
expect "the gateway authenticated each by its own connection" "carol@lab grace@lab" files_ids
expect "echoswan's status: the gateway's identity, its CHILD_SA and the file's networks" "echo.lab INSTALLED ['10.20.0.0/16']" ipsec_json echoswan 'r["ipsec"]["remote_id"], r["ipsec"]["child"]["state"], r["ipsec"]["child"]["remote_ts"]'
check "down echoswan, echoswancrlf" bash -c "nsvpn down echoswan && nsvpn down echoswancrlf"
both_left() { leftovers_of echoswan; leftovers_of echoswancrlf; }
expect "nothing of them is left" "" both_left
sed 's/secret = .*/secret = "not the key"\r/' "$P/echo-swan-crlf.conf" > "$P/badswan.conf"
printf '[vpn]\nkind = "ipsec"\nconfig = "badswan.conf"\nconnection = "lab"\n' > "$P/badswan.toml"
status_is "a swanctl.conf with a wrong pre-shared key fails" 1 nsvpn up badswan
grep -q "authentication failed: the gateway refused the pre-shared key (check the \`secrets\` and \`local\` sections of .*badswan.conf)" /tmp/out \
  && ok "... saying so, naming the file" || { fail "... saying so, naming the file"; cat /tmp/out; }
expect "... and leaves nothing of badswan" "" leftovers_of badswan
printf 'connections {\n  c {\n    remote_addrs = %s\n    local {\n      auth = psk\n    }\n    children {\n      net {\n        updown = /bin/touch /run/pwned\n      }\n    }\n  }\n}\n' "$(lab_gw_ip 4)" > "$P/badswan.conf"
printf '[vpn]\nkind = "ipsec"\nconfig = "badswan.conf"\n' > "$P/badswan.toml"
status_is "a swanctl.conf with an updown script is refused" 1 nsvpn up badswan
grep -q "line 9: \`connections.c.children.net.updown\` is not allowed: it runs a program on the host" /tmp/out \
  && ok "... naming the line and the key" || { fail "... naming the line and the key"; cat /tmp/out; }
badswan_left() { leftovers_of badswan; ls /run/pwned 2>/dev/null; true; }
expect "... and leaves nothing (and ran nothing)" "" badswan_left
rm -f "$P"/{echoswan,echoswancrlf,badswan}.toml "$P"/{echo-swan,echo-swan-crlf,badswan}.conf

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
bad_ones="badpsk ipsecdown ipsecslow roguecert badca badeap noprop noesp"
failed_leftovers() { for p in $bad_ones; do leftovers_of $p; ls /run/nsvpn 2>/dev/null | grep -x "$p"; done; true; }
# fails_with DESCRIPTION PROFILE PATTERN MAXSECS [up args]: up fails (1), the
# error matches PATTERN, within MAXSECS, and nothing of PROFILE is left.
fails_with() {
  local d=$1 p=$2 pat=$3 max=$4 start; shift 4
  start=$(date +%s%N)
  status_is "$d" 1 nsvpn up "$p" "$@"
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  grep -q -- "$pat" /tmp/out && ok "... saying: $pat" || { fail "... saying: $pat"; cat /tmp/out; }
  [ "$ms" -lt $((max * 1000)) ] && ok "... within $max s ($ms ms)" || fail "... within $max s ($ms ms)"
  expect "... and leaves nothing of $p" "" leftovers_of "$p"
}
(umask 077; echo "not the key" > "$P/badpsk.psk"; echo "not the password" > "$P/badeap.password")
sed 's/^psk_file = .*/psk_file = "badpsk.psk"/' "$P/echo.toml" > "$P/badpsk.toml"
fails_with "IPsec with a wrong pre-shared key fails" badpsk "charon did not connect: authentication failed: the gateway refused the pre-shared key (check vpn.psk_file, vpn.local_id and vpn.remote_id) \[received AUTHENTICATION_FAILED" 10
sed 's/echo-carol/echo-rogue/' "$P/echocert.toml" > "$P/roguecert.toml"
fails_with "IPsec with a certificate from a CA the gateway does not trust fails" roguecert "authentication failed: the gateway refused the certificate (check vpn.cert_file" 10
sed 's/echo-ca.crt/echo-rogue-ca.crt/' "$P/echocert.toml" > "$P/badca.toml"
fails_with "IPsec whose ca_file did not sign the gateway's certificate fails" badca "authentication failed: the gateway could not prove itself: its certificate is not signed by the CA of vpn.ca_file" 10
sed 's/^password_file = .*/password_file = "badeap.password"/' "$P/echoeap.toml" > "$P/badeap.toml"
fails_with "IPsec EAP with a wrong password fails" badeap "authentication failed: the gateway refused the user name or password (check vpn.user and vpn.password_file) \[received EAP_FAILURE" 10
sed '/^psk_file/a proposals = ["aes128-sha256-modp1024"]' "$P/echo.toml" > "$P/noprop.toml"
fails_with "IPsec with IKE proposals the gateway does not accept fails" noprop "no proposal chosen: the gateway accepts none of the algorithms offered .*NO_PROPOSAL_CHOSEN notify error" 10
sed '/^psk_file/a esp_proposals = ["aes128-md5"]' "$P/echo.toml" > "$P/noesp.toml"
fails_with "IPsec with ESP proposals the gateway does not accept fails" noesp "no proposal chosen: .*no CHILD_SA built" 10
sed 's/^server = .*/server = "203.0.113.14"/' "$P/echo.toml" > "$P/ipsecdown.toml"
fails_with "IPsec to a gateway that is down fails" ipsecdown "charon did not connect: peer unreachable: no answer from 203.0.113.14 \[giving up after 3 retransmits\]" 20
cp "$P/ipsecdown.toml" "$P/ipsecslow.toml"
fails_with "IPsec to a gateway that is down, with a shorter --timeout, says it timed out" ipsecslow "charon did not connect: timed out: no tunnel from 203.0.113.14 in 2 s" 6 --timeout 2
expect "nothing of the failed IPsec profiles is left" "" failed_leftovers
expect "no rule of theirs is left (only echo's)" "$rules_echo_up" bash -c "ip rule; ip -6 rule"
rm -f "$P"/{badpsk,ipsecdown,ipsecslow,roguecert,badca,badeap,noprop,noesp}.*
chmod 644 "$P/echo.psk"
nsvpn down echo > /dev/null
status_is "a world-readable psk_file works, with a warning" 0 nsvpn up echo
grep -q "nsvpn: warning: profile \"echo\" (.*echo.toml): field \`vpn.psk_file\`: .*echo.psk holds secrets but is accessible by group or others (mode 0644): chmod 600" /tmp/out \
  && ok "... naming the profile, the field and the file" || { fail "... naming the profile, the field and the file"; cat /tmp/out; }
chmod 600 "$P/echo.psk"

echo "# IPsec: rekeying (the gateway's rekey@lab connection rekeys its CHILD_SA every 4 s, its IKE_SA every 8 s)"
sed 's/^local_id = .*/local_id = "rekey@lab"/' "$P/echo.toml" > "$P/rekey.toml"
check "up rekey" nsvpn up rekey
child_id() { ipsec_json rekey 'r["ipsec"]["child"]["id"]'; }
first=$(child_id)
pings() { inside rekey ping -c 10 -i 1 -W 1 10.20.1.5 | grep -o '10 received'; }
expect "traffic flows all through 10 s of rekeys (a ping a second, none lost)" "10 received" pings
check "... across new CHILD_SAs (ids $first, then $(child_id))" bash -c "[ \"\$(nsvpn status rekey --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"ipsec\"][\"child\"][\"id\"])')\" -gt $first ]"
expect "... and a rekeyed IKE_SA (established less than 9 s ago)" "True" ipsec_json rekey 'r["ipsec"]["established"] < 9'
expect "status says up" "up" ipsec_json rekey 'r["state"]'
check "down rekey" nsvpn down rekey
expect "nothing of rekey is left" "" leftovers_of rekey
rm -f "$P/rekey.toml"

echo "# IPsec: the gateway stops, stays down, and comes back with another pool: the profiles reconnect by themselves"
check "up echocert" nsvpn up echocert
ipsec_state() { ipsec_json "$1" 'r["state"]'; }
vip_of() { ip -n "nsvpn-$1" -4 -br addr show dev "nsvt-$1" 2>/dev/null | awk '{print $3}'; }
# wait_state PROFILE STATE SECS: polls status; prints the ms it took, or fails.
wait_state() {
  local t0 i; t0=$(date +%s%N)
  for i in $(seq $(($3 * 10))); do [ "$(ipsec_state "$1")" = "$2" ] && { echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; }; sleep 0.1; done
  return 1
}
first_vip=$(vip_of echocert)
# A process started inside before the gateway goes, which stays there
# through it all: a ping a half second, one line each.
inside echocert bash -c 'while :; do if ping -c1 -W1 10.20.1.5 > /dev/null 2>&1; then echo "ok $(date +%s%N)"; else echo "no $(date +%s%N)"; fi; sleep 0.5; done' > /run/ipsec-stayer.log 2>&1 &
stayer=$!
for _ in $(seq 50); do grep -q '^ok' /run/ipsec-stayer.log && break; sleep 0.1; done
expect "a process inside echocert reaches the database before" "ok" bash -c "tail -n1 /run/ipsec-stayer.log | cut -d' ' -f1"
host_addrs_before=$(ip -o addr | awk '{print $2, $4}' | grep -v -e '^nsvh-' -e '^lo ' | sort)
ip monitor address > /run/ipsec-monitor.log 2>&1 &
monitor=$!
gw_pid=$(cat "$LAB_DIR/echo/server.pid")
kill "$gw_pid"; for _ in $(seq 100); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.05; done
ms=$(wait_state echocert reconnecting 10) && ok "echocert: status says reconnecting once the gateway deleted the SA ($ms ms)" || fail "echocert: status says reconnecting once the gateway deleted the SA (now: $(ipsec_state echocert))"
status_is "echocert: the database does not answer from inside while the gateway is down" 1 inside echocert ping -c1 -W1 10.20.1.5
no_escape echocert
gave_up() { ipsec_json echocert 'r["state"] + " " + str(any("peer unreachable: no answer from 203.0.113.18" in x for x in r["problems"]))'; }
for _ in $(seq 300); do [ "$(gave_up)" = "reconnecting True" ] && break; sleep 0.1; done
expect "a gateway that stays down: echocert stays reconnecting, with the reason (not up, not silently)" "reconnecting True" gave_up
t0=$(date +%s%N)
check "down echo while it reconnects" nsvpn down echo
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 6000 ] && ok "... within 6 s ($ms ms)" || fail "... within 6 s ($ms ms)"
echo_left() { leftovers_of echo; pgrep -af 'ipsec-supervise echo$'; true; }
expect "... and leaves nothing of echo (no charon, supervisor, rule, TUN)" "" echo_left
status_is "echocert: exec still enters while it reconnects (the namespace is sealed)" 0 as_user nsvpn exec echocert -- true
grep -q "nsvpn: warning: profile echocert: charon reconnecting since" /tmp/out && ok "... with a warning saying so" || { fail "... with a warning saying so"; cat /tmp/out; }
nsvpn status echocert > /run/ipsec-status.txt 2>&1
check "... and status (text) says since when and why" grep -q "charon reconnecting since [0-9]* s ago, last error: charon did not connect: peer unreachable" /run/ipsec-status.txt
# The gateway comes back with another pool: the virtual IP must follow.
cp "$LAB_DIR/echo/swanctl.conf" "$LAB_DIR/echo/swanctl.conf.orig"
sed -i 's|addrs = 10.7.0.0/24|addrs = 10.7.1.0/24|' "$LAB_DIR/echo/swanctl.conf"
back=$(date +%s%N)
lab_ipsec_server echo
ms=$(wait_state echocert up 30) && ok "echocert: up again by itself within 30 s of the gateway's return ($ms ms)" || fail "echocert: up again by itself within 30 s of the gateway's return (now: $(ipsec_state echocert))"
check "up echo again" nsvpn up echo
vip_net() { vip_of "$1" | cut -d. -f1-3; }
expect "echocert's virtual IP inside is the new pool's" "10.7.1" vip_net echocert
check "... and the old one ($first_vip) is gone from inside" bash -c "! ip -n nsvpn-echocert -4 addr | grep -qw '${first_vip%/*}'"
expect "status shows the new virtual IP" "True" ipsec_json echocert 'r["ipsec"]["vips"][0].startswith("10.7.1.")'
for _ in $(seq 50); do tail -n1 /run/ipsec-stayer.log | grep -q '^ok' && break; sleep 0.2; done
expect "the process that stayed inside reaches the database again" "ok" bash -c "tail -n1 /run/ipsec-stayer.log | cut -d' ' -f1"
check "... and it is the same process, never stopped" kill -0 "$stayer"
gap() { awk -v b="$back" '$1 == "ok" && $2 > b {print int(($2 - b) / 1000000); exit}' /run/ipsec-stayer.log; }
ok "... its first answer came $(gap) ms after the gateway's return"
expect "echocert's psql reaches echo's database by name again" echo psql_side echocert
expect "echo's too" echo psql_side echo
kill "$monitor"; wait "$monitor" 2>/dev/null
vip_events() { grep -E 'inet 10\.7\.' /run/ipsec-monitor.log; }
on_tun() { vip_events | grep -cE '^[0-9]+: ipsec[0-9]+ '; }
elsewhere() { vip_events | grep -vE '^(Deleted )?[0-9]+: ipsec[0-9]+ '; true; }
expect "the host's addresses (ip monitor address, all along): no virtual IP on the uplink or any other host link, not for a moment" "" elsewhere
ok "... only on the fresh TUN device of each new charon until it moved in, as at up ($(on_tun) event(s))"
expect "the host's addresses are as before" "$host_addrs_before" bash -c "ip -o addr | awk '{print \$2, \$4}' | grep -v -e '^nsvh-' -e '^lo ' | sort"
expect "the host's routes are unchanged" "$ipsec_routes_before" host_routes
expect "the host's XFRM policies and states are unchanged" "$xfrm_before" bash -c "ip xfrm policy 2>&1; ip xfrm state 2>&1"
expect "the host's table 220 is unchanged" "$t220_before" ip route show table 220
check "the supervisor's log says what it did" bash -c "grep -q 'profile echocert: reconnected (attempt [0-9]*' /run/nsvpn/echocert/ipsec-supervise.log"
ip netns pids nsvpn-echocert | xargs -r kill; wait "$stayer" 2>/dev/null
for _ in $(seq 40); do [ -z "$(ip netns pids nsvpn-echocert)" ] && break; sleep 0.05; done
# The gateway as it was, for what follows (the profiles follow it again).
mv "$LAB_DIR/echo/swanctl.conf.orig" "$LAB_DIR/echo/swanctl.conf"
gw_pid=$(cat "$LAB_DIR/echo/server.pid")
kill "$gw_pid"; for _ in $(seq 100); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.05; done
lab_ipsec_server echo
ms=$(wait_state echo up 30) && ok "a second restart: echo is back by itself ($ms ms), with the first pool's address $(vip_of echo)" || fail "a second restart: echo is back by itself (now: $(ipsec_state echo))"
ms=$(wait_state echocert up 30) && ok "... and echocert ($ms ms more)" || fail "... and echocert (now: $(ipsec_state echocert))"
echo "# IPsec: the gateway dies without a word (SIGKILL): dead peer detection finds it, the profile reconnects once it is back"
gw_pid=$(cat "$LAB_DIR/echo/server.pid")
kill -9 "$gw_pid"; for _ in $(seq 100); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.05; done
ms=$(wait_state echocert reconnecting 40) && ok "echocert: reconnecting once dead peer detection gave up ($ms ms; dpd_delay 10 s, 3 retransmits)" || fail "echocert: reconnecting once dead peer detection gave up (now: $(ipsec_state echocert))"
expect "... saying so" "True" ipsec_json echocert 'any("charon reconnecting since" in x and ("giving up after" in x or "peer unreachable" in x) for x in r["problems"])'
lab_ipsec_server echo
ms=$(wait_state echocert up 30) && ok "echocert: up again by itself within 30 s of the gateway's return ($ms ms)" || fail "echocert: up again by itself within 30 s of the gateway's return (now: $(ipsec_state echocert))"
expect "echocert's psql reaches echo's database by name again" echo psql_side echocert
ms=$(wait_state echo up 30) && ok "echo too ($ms ms more)" || fail "echo too (now: $(ipsec_state echo))"
check "down echocert" nsvpn down echocert
echocert_left() { leftovers_of echocert; pgrep -af 'ipsec-supervise echocert'; true; }
expect "nothing of echocert is left (its supervisor neither)" "" echocert_left

echo "# IPsec: without its supervisor, a lost SA makes the profile broken, not silently up"
check "up echoeap" nsvpn up echoeap
kill "$(cat /run/nsvpn/echoeap/ipsec-supervise.pid)"
for _ in $(seq 40); do pgrep -f 'ipsec-supervise echoeap' > /dev/null || break; sleep 0.05; done
expect "status says up, and shows the supervisor degraded" "up degraded" ipsec_json echoeap 'r["state"] + " " + [p["state"] for p in r["parts"] if p["name"] == "supervisor"][0]'
swanctl --terminate --ike rw-eap --uri "unix://$LAB_DIR/echo/charon.vici" > /dev/null 2>&1
ms=$(wait_state echoeap broken 10) && ok "the gateway deletes echoeap's SA: status says broken ($ms ms)" || fail "the gateway deletes echoeap's SA: status says broken (now: $(ipsec_state echoeap))"
expect "... naming the deleted SA and the missing supervisor" "True" ipsec_json echoeap 'any("supervisor" in x and "received DELETE for IKE_SA" in x for x in r["problems"])'
check "down echoeap" nsvpn down echoeap
expect "nothing of echoeap is left" "" leftovers_of echoeap
rm -f "$P"/{echocert,echoeap}.toml

echo "# IPsec: down deletes the SA (the gateway sees it) and leaves nothing"
expect "the gateway has echo's SA before down" "1" gw_sas
check "down echo" nsvpn down echo
expect "the gateway has no SA after down" "0" gw_sas
expect "down leaves nothing of echo (no process, rule, link, file)" "" leftovers_of echo
for p in $others; do check "down $p" nsvpn down $p; done
expect "the host's routes are as before" "$ipsec_routes_before" host_routes
expect "the host's rules are as before" "$rules_before" bash -c "ip rule; ip -6 rule"
expect "the host's XFRM policies and states are as before" "$xfrm_before" bash -c "ip xfrm policy 2>&1; ip xfrm state 2>&1"
