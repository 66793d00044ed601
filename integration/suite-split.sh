# Split tunnel ([split]) and kept forwards ([forward]): sourced by
# suite.sh. For each kind, a copy of the lab profile with internet = true, a
# direct "LAN" address that its [routes] also claims for the VPN, and a
# kept forward to db.internal:5432. All three are up at once; each reaches
# its VPN's database by name through the VPN, the lab's internet by name
# directly and the LAN address through the host, gets the VPN's answer for
# db.internal (never the public DNS's wrong one), and its forward brings a
# host-side psql to its own database. The host stays as it was; with the
# tunnel down, the kill switch holds (nothing for the VPN's prefixes on the
# internet's wire); down leaves nothing.
echo "# split tunnel: the VPN, the internet and a LAN address from the same namespace"
check "down alpha (its key serves the split copy)" nsvpn down alpha
# suite-clients.sh left charlie's server on TCP with redirect-gateway: back
# to its first form (UDP, the pushed 10.20.0.0/16 route).
lab_stop_server charlie
sed -i 's/^proto tcp-server/proto udp/; s/^topology net30/topology subnet/; s/^push "redirect-gateway def1"/push "route 10.20.0.0 255.255.0.0"/' "$LAB_DIR/charlie/server.conf"
lab_openvpn_server charlie
# The "LAN": the public DNS's address, which each profile's [routes] also
# gives the VPN (as a full-tunnel VPN would): only `direct` gets it out.
lan=$LAB_INET_DNS
# helpers_of PROFILE: the profile's slirp4netns, dnsmasq and kept forwards.
helpers_of() {
  { pgrep -a -x slirp4netns; pgrep -a -x dnsmasq; } | grep -e "/run/netns/nsvpn-$1 " -e "/run/nsvpn/$1/"
  pgrep -a -x nsvpn | grep -E " kept-forwards $1\$"
  true
}
helpers_count() { helpers_of "$1" | wc -l; }
host_state() { host_routes; sysctl -n net.ipv4.ip_forward; nft list ruleset; cat /etc/resolv.conf; }
# host_psql PORT: a psql on the host, to a kept forward.
host_psql() { psql -h 127.0.0.1 -p "$1" -U lab -d lab -Atc "select name from side"; }
# probe_vpn PROFILE: from inside, the VPN's database (TCP), its DNS server
# (UDP and TCP) and a ping, then db.internal by name.
probe_vpn() {
  inside "$1" timeout 3 bash -c "exec 3<>/dev/tcp/10.20.1.5/5432"
  inside "$1" timeout 3 bash -c "echo x > /dev/udp/10.20.0.53/53; exec 3<>/dev/tcp/10.20.0.53/53"
  inside "$1" ping -c1 -W1 10.20.1.5
  inside "$1" timeout 5 getent hosts db.internal
  true
}
host_before=$(host_state)
declare -A fport=([alpha]=15461 [charlie]=15462 [delta]=15463)
for p in alpha charlie delta; do
  sp=s$p port=${fport[$p]}
  sed 's/^description = .*/description = "split copy"/' "$LAB_DIR/profiles/$p.toml" > "$LAB_DIR/profiles/$sp.toml"
  printf '[routes]\ninclude = ["10.20.0.0/16", "%s/32"]\n[split]\ninternet = true\ndirect = ["%s/32"]\n[forward]\nports = ["%s:db.internal:5432"]\n' \
    "$lan" "$lan" "$port" >> "$LAB_DIR/profiles/$sp.toml"
  check "$sp: up with [split] internet and direct, and [forward] ports" nsvpn up "$sp"
done
for p in alpha charlie delta; do
  sp=s$p port=${fport[$p]}
  expect "$sp: db.internal is the VPN's answer" "10.20.1.5 db.internal" bash -c "nsvpn exec $sp -- getent hosts db.internal | tr -s ' '"
  expect "$sp: psql reaches the VPN's database by name" "$p" psql_side "$sp"
  expect "$sp: the public service by name, directly" "public" nsvpn exec "$sp" -- curl -sS -m 5 "http://$LAB_INET_NAME/"
  expect "$sp: the LAN address is the VPN's in the main table (its [routes] claim it)" "$lan dev nsvt-$sp" \
    bash -c "ip -n nsvpn-$sp -4 route show $lan/32 | grep -v unreachable | awk '{print \$1, \$2, \$3}'"
  expect "$sp: ... and direct sends it through the host's network (the stack's table)" "dev nsvs0 table 100" \
    bash -c "ip -n nsvpn-$sp -o route get $lan | grep -o 'dev [^ ]* table [0-9]*'"
  check "$sp: ... where the same shell reaches it (TCP to its port 53)" inside "$sp" timeout 3 bash -c "exec 3<>/dev/tcp/$lan/53"
  expect "$sp: a client that half-closes first gets the answer once" "public: answered after your EOF" nsvpn exec "$sp" -- sh -c "socat - TCP:$LAB_INET_WWW:13 </dev/null"
  expect "$sp: a large download arrives intact" "$(curl -sS -m 10 "http://$LAB_INET_WWW/big.bin.sha256" | cut -d' ' -f1)" bash -c "nsvpn exec $sp -- curl -sS -m 20 http://$LAB_INET_WWW/big.bin | sha256sum | cut -d' ' -f1"
  expect "$sp: a host-side psql through its kept forward reaches its own database" "$p" host_psql "$port"
  expect "$sp: status shows every part" "parts namespace ok, veth ok, tunnel ok, stack ok, resolver ok, forwards ok" \
    bash -c "nsvpn status $sp | sed -n 's/^  parts *//p' | sed 's/^/parts /'"
  expect "$sp: status shows the split, the DNS split and the forward" \
    "internet on (what the VPN does not route leaves through the host); direct $lan/32|internal -> 10.20.0.53 (the VPN's); other names -> the host's resolver, through the stack's 169.254.250.3|127.0.0.1:$port -> db.internal:5432" \
    bash -c "nsvpn status $sp | sed -n -e 's/^  split \{10\}//p' -e 's/^  split dns \{6\}//p' -e 's/^  forwards  *\([^(]*\) (.*/\1/p' | paste -sd'|'"
  expect "$sp: status --json says the same" "true $lan/32 internal 10.20.0.53 ok ok 127.0.0.1:$port db.internal:5432 ok" \
    bash -c "nsvpn status $sp --json | python3 -c 'import json,sys; r=json.load(sys.stdin); s=r[\"split\"]; f=r[\"forwards\"]; print(s[\"internet\"] and \"true\", *s[\"direct\"], *s[\"dns\"][\"domains\"], *s[\"dns\"][\"vpn_servers\"], s[\"stack\"][\"state\"], s[\"resolver\"][\"state\"], f[\"ports\"][0][\"listen\"], f[\"ports\"][0][\"target\"], f[\"part\"][\"state\"])'"
  expect "$sp: its stack, resolver and forwarder run, found as down finds them" "3" helpers_count "$sp"
  expect "$sp: the forwarder runs as nobody, inside the namespace" "nobody nsvpn-$sp" \
    bash -c "pid=\$(pgrep -f -x '.*nsvpn kept-forwards $sp'); echo \$(ps -o user= -p \$pid) \$(ip netns identify \$pid)"
done
expect "the host is unchanged with three split profiles up: routes, ip_forward, ruleset, resolv.conf" "$host_before" host_state
for p in alpha charlie delta; do
  sp=s$p
  asked=$(lab_inet_asked db.internal)
  ip -n "nsvpn-$sp" link set "nsvt-$sp" down
  status_is "$sp: with the tunnel down, the VPN's database gets no route (no way out by the stack)" 1 inside "$sp" timeout 3 bash -c "exec 3<>/dev/tcp/10.20.1.5/5432"
  grep -q "No route to host" /tmp/out && ok "... it fails at once: unreachable" || { fail "... it fails at once: unreachable"; cat /tmp/out; }
  status_is "$sp: with the tunnel down, db.internal gets no answer" 2 inside "$sp" timeout 5 getent hosts db.internal
  expect "$sp: ... and the public DNS was never asked for it" "$asked" lab_inet_asked db.internal
  expect "$sp: a capture on the internet's wire sees nothing for the VPN's 10.20.0.0/16 (TCP, UDP, ping, a lookup)" "0" \
    lab_wan_saw "net 10.20.0.0/16" probe_vpn "$sp"
  saw=$(lab_wan_saw "host $LAB_INET_WWW" inside "$sp" curl -sS -m 5 "http://$LAB_INET_WWW/")
  check "control: the same capture sees the public service's packets ($saw)" test "$saw" -gt 0
  check "$sp: down" nsvpn down "$sp"
  expect "$sp: no stack, no resolver, no forwarder is left" "" helpers_of "$sp"
  status_is "$sp: nothing listens on its forward's port any more" 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/${fport[$p]}"
  rm -f "$LAB_DIR/profiles/$sp.toml"
done
# A kept forward that cannot start fails up, which leaves nothing.
sed 's/^description = .*/description = "bad forward"/' "$LAB_DIR/profiles/alpha.toml" > "$LAB_DIR/profiles/falpha.toml"
printf '[forward]\nports = ["15470:nowhere.internal:5432"]\n' >> "$LAB_DIR/profiles/falpha.toml"
status_is "falpha: up with a forward to a name that does not resolve inside fails" 1 nsvpn up falpha
grep -q "nowhere.internal does not resolve inside profile falpha" /tmp/out && ok "... and says which name" || { fail "... and says which name"; cat /tmp/out; }
falpha_left() { ip netns list | grep -w nsvpn-falpha; helpers_of falpha; }
expect "falpha: ... and leaves nothing (no namespace, no forwarder)" "" falpha_left
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",15471)); s.listen(); time.sleep(60)' & busy=$!
sleep 0.3
sed -i 's/15470:nowhere.internal/15471:db.internal/' "$LAB_DIR/profiles/falpha.toml"
status_is "falpha: up with a forward on a port in use fails" 1 nsvpn up falpha
grep -q "127.0.0.1:15471 is already in use" /tmp/out && ok "... and says which port" || { fail "... and says which port"; cat /tmp/out; }
kill "$busy" 2>/dev/null; wait "$busy" 2>/dev/null
expect "falpha: ... and leaves nothing" "" falpha_left
rm -f "$LAB_DIR/profiles/falpha.toml"
# direct without internet: only the direct prefix leaves through the host.
sed 's/^description = .*/description = "direct only"/' "$LAB_DIR/profiles/alpha.toml" > "$LAB_DIR/profiles/dalpha.toml"
printf '[split]\ndirect = ["%s/32"]\n' "$LAB_INET_WWW" >> "$LAB_DIR/profiles/dalpha.toml"
check "dalpha: up with [split] direct only" nsvpn up dalpha
expect "dalpha: the direct address is reached through the host" "public" nsvpn exec dalpha -- curl -sS -m 5 "http://$LAB_INET_WWW/"
unreachable "dalpha: the rest of the internet is not" inside dalpha ping -c1 -W1 "$LAB_INET_DNS"
expect "dalpha: the VPN's database still by name" "alpha" psql_side dalpha
expect "dalpha: status says internet off, the direct prefix, and the DNS split (other names through the stack)" \
  "internet off; direct $LAB_INET_WWW/32|internal -> 10.20.0.53 (the VPN's); other names -> the host's resolver, through the stack's 169.254.250.3" \
  bash -c "nsvpn status dalpha | sed -n -e 's/^  split \{10\}//p' -e 's/^  split dns \{6\}//p' | paste -sd'|'"
check "dalpha: down" nsvpn down dalpha
rm -f "$LAB_DIR/profiles/dalpha.toml"
expect "the host is still unchanged after the split profiles" "$host_before" host_state
check "up alpha again" nsvpn up alpha
