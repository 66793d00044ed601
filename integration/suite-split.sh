# Split tunnel ([split]): sourced by suite.sh. For each kind, a copy of the
# lab profile with internet = true reaches its VPN's database by name
# through the VPN, the lab's internet by name directly, gets the VPN's
# answer for db.internal (never the public DNS's wrong one), leaves the
# host as it was, and keeps its kill switch when the tunnel goes down.
echo "# split tunnel: the VPN and the internet from the same namespace"
check "down alpha (its key serves the split copy)" nsvpn down alpha
# suite-clients.sh left charlie's server on TCP with redirect-gateway: back
# to its first form (UDP, the pushed 10.20.0.0/16 route).
lab_stop_server charlie
sed -i 's/^proto tcp-server/proto udp/; s/^topology net30/topology subnet/; s/^push "redirect-gateway def1"/push "route 10.20.0.0 255.255.0.0"/' "$LAB_DIR/charlie/server.conf"
lab_openvpn_server charlie
# helpers_of PROFILE: the profile's slirp4netns and dnsmasq processes.
helpers_of() { { pgrep -a -x slirp4netns; pgrep -a -x dnsmasq; } | grep -e "/run/netns/nsvpn-$1 " -e "/run/nsvpn/$1/"; true; }
helpers_count() { helpers_of "$1" | wc -l; }
host_state() { host_routes; sysctl -n net.ipv4.ip_forward; nft list ruleset; cat /etc/resolv.conf; }
host_before=$(host_state)
for p in alpha charlie delta; do
  sp=s$p
  sed 's/^description = .*/description = "split copy"/' "$LAB_DIR/profiles/$p.toml" > "$LAB_DIR/profiles/$sp.toml"
  printf '[split]\ninternet = true\n' >> "$LAB_DIR/profiles/$sp.toml"
  check "$sp: up with [split] internet = true" nsvpn up "$sp"
  expect "$sp: db.internal is the VPN's answer" "10.20.1.5 db.internal" bash -c "nsvpn exec $sp -- getent hosts db.internal | tr -s ' '"
  expect "$sp: psql reaches the VPN's database by name" "$p" psql_side "$sp"
  expect "$sp: the public service by name, directly" "public" nsvpn exec "$sp" -- curl -sS -m 5 "http://$LAB_INET_NAME/"
  expect "$sp: a client that half-closes first gets the answer once" "public: answered after your EOF" nsvpn exec "$sp" -- sh -c "socat - TCP:$LAB_INET_WWW:13 </dev/null"
  expect "$sp: a large download arrives intact" "$(curl -sS -m 10 "http://$LAB_INET_WWW/big.bin.sha256" | cut -d' ' -f1)" bash -c "nsvpn exec $sp -- curl -sS -m 20 http://$LAB_INET_WWW/big.bin | sha256sum | cut -d' ' -f1"
  expect "$sp: status shows the stack and the resolver" "parts namespace ok, veth ok, tunnel ok, stack ok, resolver ok" bash -c "nsvpn status $sp | sed -n 's/^  parts *//p' | sed 's/^/parts /'"
  expect "$sp: the host is unchanged: routes, ip_forward, ruleset, resolv.conf" "$host_before" host_state
  expect "$sp: its stack and resolver run, found as down finds them" "2" helpers_count "$sp"
  asked=$(lab_inet_asked db.internal)
  ip -n "nsvpn-$sp" link set "nsvt-$sp" down
  status_is "$sp: with the tunnel down, the VPN's database gets no route (no way out by the stack)" 1 inside "$sp" timeout 3 bash -c "exec 3<>/dev/tcp/10.20.1.5/5432"
  grep -q "No route to host" /tmp/out && ok "... it fails at once: unreachable" || { fail "... it fails at once: unreachable"; cat /tmp/out; }
  status_is "$sp: with the tunnel down, db.internal gets no answer" 2 inside "$sp" timeout 5 getent hosts db.internal
  expect "$sp: ... and the public DNS was never asked for it" "$asked" lab_inet_asked db.internal
  check "$sp: down" nsvpn down "$sp"
  expect "$sp: no stack, no resolver is left" "" helpers_of "$sp"
  rm -f "$LAB_DIR/profiles/$sp.toml"
done
# direct without internet: only the direct prefix leaves through the host.
sed 's/^description = .*/description = "direct only"/' "$LAB_DIR/profiles/alpha.toml" > "$LAB_DIR/profiles/dalpha.toml"
printf '[split]\ndirect = ["%s/32"]\n' "$LAB_INET_WWW" >> "$LAB_DIR/profiles/dalpha.toml"
check "dalpha: up with [split] direct only" nsvpn up dalpha
expect "dalpha: the direct address is reached through the host" "public" nsvpn exec dalpha -- curl -sS -m 5 "http://$LAB_INET_WWW/"
unreachable "dalpha: the rest of the internet is not" inside dalpha ping -c1 -W1 "$LAB_INET_DNS"
expect "dalpha: the VPN's database still by name" "alpha" psql_side dalpha
check "dalpha: down" nsvpn down dalpha
rm -f "$LAB_DIR/profiles/dalpha.toml"
expect "the host is still unchanged after the split profiles" "$host_before" host_state
check "up alpha again" nsvpn up alpha
