# nsvpn doctor: sourced by suite.sh (alpha and bravo are up). Each failure
# the issue lists is staged in the lab, doctor must find it with its fix
# (and exit 1), and the staging is undone; the healthy host and profile
# give one line and exit 0. Doctor itself must change nothing.
echo "# doctor: healthy, then each failure staged, found with its fix, undone"
check "doctor: alpha is up" nsvpn up alpha
check "doctor: bravo is up" nsvpn up bravo
# What doctor must never change: links, addresses, routes, rules,
# namespaces, /etc/netns, resolv.conf, nsvpn's state.
doctor_sees() {
  ip -br link | awk '{print $1, $2}' | sort; ip -br addr | sort; host_routes; ip rule; ip netns list | sort
  ip -n nsvpn-alpha -br addr | sort; ip -n nsvpn-alpha route; ip -n nsvpn-alpha rule
  ls -A /etc/netns /run/nsvpn; cat /etc/resolv.conf /run/nsvpn/*/state.json 2>/dev/null
}
# doctor_says DESCRIPTION STATUS TEXT ARGS...: doctor ARGS exits STATUS and
# its report holds TEXT (a fixed string).
doctor_says() {
  local d=$1 want=$2 text=$3; shift 3
  nsvpn doctor "$@" > /tmp/doctor.out 2>&1; local rc=$?
  if [ "$rc" = "$want" ] && grep -qF -- "$text" /tmp/doctor.out; then ok "$d"; else
    fail "$d (exit $rc, wanted $want)"; echo "       wanted a line with: $text"; sed 's/^/       /' /tmp/doctor.out | head -n 30; fi
}

# Healthy: one line each, exit 0, in time.
expect "doctor on the healthy host: one line, exit 0" "nsvpn doctor host: nothing wrong (checked routes, dns, leftovers) 0" \
  bash -c 'out=$(nsvpn doctor); echo "$out $?"'
t0=$(date +%s%N)
nsvpn -v doctor alpha > /tmp/doctor.out 2> /tmp/doctor.err; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
mtu_ms=$(sed -n 's/.*MTU search: [0-9]* probes in \([0-9]*\) ms.*/\1/p' /tmp/doctor.err)
echo "# doctor alpha took $ms ms, its MTU search ${mtu_ms:-?} ms"
[ "$rc" = 0 ] && [ "$(head -n 1 /tmp/doctor.out)" = "nsvpn doctor alpha: nothing wrong (checked tunnel, routes, dns, mtu)" ] \
  && grep -qF "ok: mtu: the path to 10.20.0.53 carries the tunnel's full MTU (1420 bytes)" /tmp/doctor.out \
  && grep -qF "ok: dns: 10.20.0.53 (the VPN's, through nsvt-alpha) answers internal" /tmp/doctor.out \
  && ok "doctor on healthy alpha: nothing wrong, the full MTU to its DNS server, exit 0" \
  || { fail "doctor on healthy alpha (exit $rc)"; sed 's/^/       /' /tmp/doctor.out /tmp/doctor.err; }
[ "$ms" -lt 2000 ] && [ -n "$mtu_ms" ] && [ "$mtu_ms" -lt 1000 ] && ok "... in under 2 s ($ms ms), the MTU search under 1 s ($mtu_ms ms)" \
  || fail "... in under 2 s ($ms ms), the MTU search under 1 s (${mtu_ms:-none} ms)"
expect "doctor --json: the same findings (none), for scripts" "alpha 0 mtu" \
  bash -c "nsvpn doctor alpha --json | jq -r '[.scope, (.findings | length), .checked[-1]] | join(\" \")'"
before=$(doctor_sees)
nsvpn doctor > /dev/null 2>&1; nsvpn doctor alpha --target db.internal > /dev/null 2>&1; nsvpn doctor bravo > /dev/null 2>&1
expect "doctor changed nothing (links, addresses, routes, rules, namespaces, files, state)" "$before" doctor_sees

# The gateway's links at 1300 (its tunnel toward the client and its inside
# link toward the database), so that a full-size packet in either direction
# needs a "fragmentation needed" from the gateway, which nftables drops.
# A split profile: its resolver inside answers, and the VPN's server behind it
# is asked through the tunnel too. (It uses alpha's key: alpha goes down
# meanwhile, as one WireGuard peer has one endpoint.)
check "down alpha (its key serves the split copy)" nsvpn down alpha
{ cat "$LAB_DIR/profiles/alpha.toml"; printf '[split]\ninternet = true\n'; } > "$LAB_DIR/profiles/dsplit.toml"
check "dsplit: up (alpha with [split] internet = true)" nsvpn up dsplit
doctor_says "doctor dsplit: nothing wrong, exit 0" 0 "nsvpn doctor dsplit: nothing wrong (checked tunnel, routes, dns, mtu)" dsplit
grep -qF "ok: dns: 127.0.0.1 (the split resolver inside) answers internal" /tmp/doctor.out && grep -qF "ok: dns: 10.20.0.53 (the VPN's, through nsvt-dsplit) answers internal" /tmp/doctor.out \
  && ok "... the split resolver and the VPN's server behind it both answer" || { fail "... the split resolver and the VPN's server behind it both answer"; sed 's/^/       /' /tmp/doctor.out; }
check "dsplit: down" nsvpn down dsplit
rm -f "$LAB_DIR/profiles/dsplit.toml"
check "up alpha again" nsvpn up alpha

echo "# doctor: an MTU black hole (gateway alpha's inside links at 1300, nftables dropping ICMP frag-needed)"
# A 640 kB result (its length counted on this side).
big="select string_agg(md5(g::text), '') from generate_series(1, 20000) g"
big_psql() { timeout "$1" nsvpn exec alpha -- psql -h db.internal -U lab -d lab -Atc "$big" | wc -c; }
ip -n lab-gw-alpha link set int0 mtu 1300; ip -n lab-gw-alpha link set lgw0 mtu 1300
ip netns exec lab-gw-alpha nft -f - <<'NFT'
table inet doctor {
  chain out { type filter hook output priority 0; icmp type destination-unreachable icmp code frag-needed drop; }
}
NFT
doctor_says "doctor alpha --target db.internal: a black hole, with the mtu to set" 1 \
  "PROBLEM [mtu] MTU black hole: the path to 10.20.1.5 carries 1300 bytes, the tunnel sends up to 1420, and no router says so" -v alpha --target db.internal
mtu_ms=$(sed -n 's/.*MTU search: \([0-9]*\) probes in \([0-9]*\) ms.*/\1 \2/p' /tmp/doctor.out)
echo "# the black hole's MTU search: ${mtu_ms% *} probes in ${mtu_ms#* } ms"
[ -n "$mtu_ms" ] && [ "${mtu_ms#* }" -lt 1000 ] && ok "... the search took under 1 s" || fail "... the search took under 1 s (${mtu_ms:-none})"
grep -qF "add \`mtu = 1300\` at the top of $LAB_DIR/profiles/alpha.toml" /tmp/doctor.out && grep -qF "\`MTU = 1300\` in the [Interface] section of $LAB_DIR/profiles/alpha.conf" /tmp/doctor.out \
  && ok "... the fix: mtu = 1300 in the profile, or MTU = 1300 in the wg-quick file" || { fail "... the fix"; sed 's/^/       /' /tmp/doctor.out; }
expect "... and a large psql result indeed stalls (nothing within 3 s)" "0" big_psql 3
mtu=$(sed -n 's/.*add `mtu = \([0-9]*\)`.*/\1/p' /tmp/doctor.out)
sed -i "1i mtu = ${mtu:-0}" "$LAB_DIR/profiles/alpha.toml"
check "... doctor's advice taken: down and up alpha" bash -c "nsvpn down alpha && nsvpn up alpha"
expect "... the tunnel's MTU is now $mtu" "1300" bash -c "ip -n nsvpn-alpha -o link show nsvt-alpha | sed 's/.* mtu \([0-9]*\) .*/\1/'"
expect "... and the large psql result comes through" "640001" big_psql 10
doctor_says "... and doctor finds nothing wrong" 0 "ok: mtu: the path to 10.20.1.5 carries the tunnel's full MTU (1300 bytes)" alpha --target db.internal
sed -i '1d' "$LAB_DIR/profiles/alpha.toml"
check "... mtu taken out again: down and up alpha" bash -c "nsvpn down alpha && nsvpn up alpha"

# The key sets the tunnel's MTU for the other kinds too (OpenVPN and
# OpenConnect through the hook, IPsec through its own connect).
for p in charlie delta echo; do
  { echo "mtu = 1300"; cat "$LAB_DIR/profiles/$p.toml"; } > "$LAB_DIR/profiles/m$p.toml"
  check "m$p: up with mtu = 1300" nsvpn up "m$p"
  expect "m$p: its tunnel's MTU is 1300" "1300" bash -c "ip -n nsvpn-m$p -o link show nsvt-m$p | sed 's/.* mtu \([0-9]*\) .*/\1/'"
  doctor_says "m$p: doctor finds nothing wrong" 0 "nsvpn doctor m$p: nothing wrong (checked tunnel, routes, dns, mtu)" "m$p"
  if [ "$p" = charlie ]; then
    pid=$(jq -r .pid "/run/nsvpn/m$p/state.json"); kill -9 "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    doctor_says "m$p: openvpn killed: doctor says broken" 1 "PROBLEM [tunnel] profile m$p is broken: its tunnel cannot work" "m$p"
    grep -qF "the end of openvpn's log (/run/nsvpn/m$p/openvpn.log):" /tmp/doctor.out && grep -qF "fix:      nsvpn down m$p && nsvpn up m$p" /tmp/doctor.out \
      && ok "... with the end of openvpn's log and the fix" || { fail "... with the end of openvpn's log and the fix"; sed 's/^/       /' /tmp/doctor.out; }
  fi
  check "m$p: down" nsvpn down "m$p"
  rm -f "$LAB_DIR/profiles/m$p.toml"
done

echo "# doctor: the same smaller MTU with ICMP allowed is no black hole"
ip netns exec lab-gw-alpha nft delete table inet doctor
doctor_says "doctor alpha --target 10.20.1.5: Path MTU Discovery works, exit 0" 0 \
  "ok: mtu: the path to 10.20.1.5 carries 1300 of the tunnel's 1420 bytes, and 10.99.0.1 says so (ICMP \"fragmentation needed\", MTU 1300): Path MTU Discovery works, nothing to do" alpha --target 10.20.1.5
expect "... and the large psql result comes through without any change" "640001" big_psql 10
ip -n lab-gw-alpha link set int0 mtu 1500; ip -n lab-gw-alpha link set lgw0 mtu 1420

echo "# doctor: host routes over a docker0 bridge, Tailscale and each other; MagicDNS"
ip link add docker0 type bridge; ip addr add 172.17.0.1/16 dev docker0; ip link set docker0 up
ip tuntap add dev tun-corp mode tun; ip addr add 10.8.0.2/24 dev tun-corp; ip link set tun-corp up
ip route add 172.17.5.0/24 dev tun-corp; ip route add 100.100.0.0/16 dev tun-corp
doctor_says "doctor: a tunnel's route over the docker0 bridge, with the fix" 1 \
  "PROBLEM [routes] the tunnel tun-corp's route 172.17.5.0/24 overlaps the container bridge docker0" 
grep -qF '"bip": "172.31.0.1/24"' /tmp/doctor.out && ok "... the fix moves Docker's bridge" || fail "... the fix moves Docker's bridge"
grep -qF "PROBLEM [leftovers] stale tunnel device tun-corp: no process holds it (no carrier)" /tmp/doctor.out && grep -qF "fix:      ip link del tun-corp" /tmp/doctor.out \
  && ok "... and the tun device no client holds is stale, with ip link del" || fail "... and the tun device no client holds is stale"
cp -P --preserve=all /etc/resolv.conf /run/doctor-resolv.saved
rm -f /etc/resolv.conf; printf '# resolv.conf(5) file generated by tailscale\nnameserver 100.100.100.100\n' > /etc/resolv.conf
ip tuntap add dev tailscale0 mode tun; ip addr add 100.101.1.1/32 dev tailscale0; ip link set tailscale0 up
ip route add 100.64.0.0/10 dev tailscale0
doctor_says "doctor: a tunnel's route over Tailscale (tailscale0)" 1 "PROBLEM [routes] the tunnel tun-corp's route 100.100.0.0/16 overlaps Tailscale"
grep -qF "notice [dns] Tailscale's MagicDNS (100.100.100.100) answers the host's names" /tmp/doctor.out && ok "... and MagicDNS owns the host's DNS" || fail "... and MagicDNS owns the host's DNS"
ip link del tailscale0; ip link del tun-corp; ip link del docker0

echo "# doctor: resolv.conf as resolved's stub, then dangling"
mkdir -p /run/systemd/resolve; printf 'nameserver 127.0.0.53\noptions edns0 trust-ad\n' > /run/systemd/resolve/stub-resolv.conf
ln -sfn /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
doctor_says "doctor: the resolved stub is a notice, exit 0" 0 "notice [dns] systemd-resolved owns the host's DNS (its stub, 127.0.0.53)"
rm -rf /run/systemd
doctor_says "doctor: a dangling symlink is a problem, with the fix" 1 "PROBLEM [dns] /etc/resolv.conf is a dangling symlink"
grep -qF "start what writes /run/systemd/resolve/stub-resolv.conf" /tmp/doctor.out && ok "... the fix names its target" || fail "... the fix names its target"
rm -f /etc/resolv.conf; cp -P --preserve=all /run/doctor-resolv.saved /etc/resolv.conf; rm -f /run/doctor-resolv.saved

echo "# doctor: loopback routed into alpha's tunnel by a rule"
ip -n nsvpn-alpha rule add pref 100 lookup local
ip -n nsvpn-alpha rule del pref 0 lookup local
ip -n nsvpn-alpha rule add pref 10 to 127.0.0.0/8 lookup 77
ip -n nsvpn-alpha route add 127.0.0.0/8 dev nsvt-alpha table 77
doctor_says "doctor alpha: loopback routed away from lo, with the fix" 1 "PROBLEM [routes] loopback (127.0.0.1) is routed to" alpha
grep -qF '`ip -n nsvpn-alpha route get 127.0.0.1`: unicast 127.0.0.1 dev nsvt-alpha table 77' /tmp/doctor.out && grep -qF '`ip -n nsvpn-alpha rule show`' /tmp/doctor.out \
  && ok "... the evidence is the kernel's route (the tunnel, table 77); the fix finds and deletes the rule" || fail "... the evidence and the fix"
ip -n nsvpn-alpha rule del pref 10; ip -n nsvpn-alpha route flush table 77
ip -n nsvpn-alpha rule add pref 0 lookup local; ip -n nsvpn-alpha rule del pref 100

echo "# doctor: a gateway that drops alpha's UDP (a session that must be made anew)"
ip netns exec lab-gw-alpha nft add table inet doctor
ip netns exec lab-gw-alpha nft add chain inet doctor in '{ type filter hook input priority 0; udp dport 51820 drop; }'
(umask 077; wg showconf nsvt-alpha > /run/doctor-alpha.wg && wg setconf nsvt-alpha /run/doctor-alpha.wg); rm -f /run/doctor-alpha.wg
doctor_says "doctor alpha: no handshake with the endpoint, UDP lost" 1 "PROBLEM [tunnel] no WireGuard handshake with 203.0.113.2:51820: UDP to the endpoint is lost" alpha
grep -qF "has no TCP fallback" /tmp/doctor.out && ok "... and WireGuard has no TCP fallback" || fail "... and WireGuard has no TCP fallback"
ip netns exec lab-gw-alpha nft delete table inet doctor
# wireguard-go retries a failed handshake only every 5 s: a fresh peer
# (the same configuration again) starts one at doctor's first packet.
(umask 077; wg showconf nsvt-alpha > /run/doctor-alpha.wg && wg setconf nsvt-alpha /run/doctor-alpha.wg); rm -f /run/doctor-alpha.wg
doctor_says "... UDP let through: doctor's traffic makes the handshake, nothing wrong" 0 "nsvpn doctor alpha: nothing wrong" alpha

echo "# doctor: a killed client"
kill "$(pgrep -f 'wireguard-go.* nsvt-bravo$' | head -n 1)"; sleep 0.3
doctor_says "doctor bravo: broken, its client has exited" 1 "PROBLEM [tunnel] profile bravo is broken: its tunnel cannot work" bravo
grep -qF "fix:      nsvpn down bravo && nsvpn up bravo" /tmp/doctor.out && grep -qF "the end of wireguard-go's log (/run/nsvpn/bravo/" /tmp/doctor.out \
  && ok "... with the end of the client's log and the fix" || { fail "... with the end of the client's log and the fix"; sed 's/^/       /' /tmp/doctor.out; }
doctor_says "doctor: the host sees bravo's client gone" 1 "PROBLEM [leftovers] profile bravo's VPN client is gone"
check "... the fix: down and up bravo" bash -c "nsvpn down bravo && nsvpn up bravo"
doctor_says "... and doctor bravo finds nothing wrong" 0 "nsvpn doctor bravo: nothing wrong" bravo

echo "# doctor: leftovers with no profile up"
ip netns add nsvpn-ghost; mkdir -p /etc/netns/nsvpn-ghost
ip link add nsvh-ghost type veth peer name nsvn-ghost netns nsvpn-ghost
doctor_says "doctor: leftovers of ghost, with nsvpn down ghost" 1 "PROBLEM [leftovers] leftovers of profile ghost, which is not up" 
grep -qF "link nsvh-ghost on the host" /tmp/doctor.out && grep -qF "directory /etc/netns/nsvpn-ghost" /tmp/doctor.out && grep -qF "fix:      nsvpn down ghost" /tmp/doctor.out \
  && ok "... the namespace, link and directory, and the fix" || fail "... the namespace, link and directory, and the fix"
check "... the fix: nsvpn down ghost" nsvpn down ghost
doctor_says "... and the host is healthy again, exit 0" 0 "nsvpn doctor host: nothing wrong"
cp "$LAB_DIR/profiles/alpha.toml" "$LAB_DIR/profiles/docdown.toml"
doctor_says "doctor of a profile that is down says so, exit 1" 1 "PROBLEM [tunnel] profile docdown is not up" docdown
rm -f "$LAB_DIR/profiles/docdown.toml"
rm -f /tmp/doctor.out /tmp/doctor.err
