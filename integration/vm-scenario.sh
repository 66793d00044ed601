#!/bin/bash
# The WireGuard scenario on KERNEL WireGuard, run inside the VM that vm.sh
# boots (its init calls this as root). Both ends use the kernel module: the
# lab's gateways are `ip link add ... type wireguard`, and the VM has no
# wireguard-go at all, so nsvpn cannot fall back to it. The database is a web
# page here (busybox httpd), since the VM carries no PostgreSQL.
# Prints one line per check and "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LAB_WG=kernel
# shellcheck source=lab.sh
source "$here/lab.sh"
# shellcheck source=checks.sh
source "$here/checks.sh"

# side PROFILE: the page of db.internal, fetched from inside as the user. The
# name goes through glibc (bash's /dev/tcp), as any program's would; static
# busybox wget cannot resolve names as a normal user.
side() {
  as_user nsvpn exec "$1" -- timeout 5 bash -c \
    'exec 3<>/dev/tcp/db.internal/80 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && tail -n 1 <&3'
}
json() { nsvpn status "$1" --json | tr -d ' \n' | grep -o "\"$2\":[^,}]*" | head -n 1 | cut -d: -f2- | tr -d '"'; }
wg_inside() { ip netns exec "nsvpn-$1" wg show "nsvt-$1" "$2"; }

trap lab_down EXIT
echo "# setting up the lab (kernel WireGuard gateways)"
setup() {
  set -e
  mkdir -p "$LAB_DIR"
  lab_network alpha 0; lab_httpd alpha; lab_wireguard alpha 0
  lab_network bravo 1; lab_httpd bravo; lab_wireguard bravo 1 ipv6
  printf '[vpn]\nkind = "wireguard"\nconfig = "alpha.conf"\n' > "$LAB_DIR/profiles/alpha.toml"
  printf '[vpn]\nkind = "wireguard"\nconfig = "bravo.conf"\n[hosts]\n"gateway.bravo" = "10.20.0.1"\n' \
    > "$LAB_DIR/profiles/bravo.toml"
  # The strongSwan gateway (kernel-libipsec in its namespace, as in the
  # suite) and a profile on the automatic path, which is the kernel's here.
  lab_network echo 4; lab_httpd echo; lab_ipsec echo 4
  printf '[vpn]\nkind = "ipsec"\nserver = "%s"\nlocal_id = "alice@lab"\nremote_id = "echo.lab"\npsk_file = "echo.psk"\nesp_proposals = ["aes128-sha256"]\n' \
    "$(lab_gw_ip 4)" > "$LAB_DIR/profiles/echo.toml"
}
if ! (setup) > /run/lab-setup.log 2>&1; then
  echo "FAIL - the lab did not start:"; tail -n 30 /run/lab-setup.log; echo "0 passed, 1 failed"; exit 1
fi
export NSVPN_PROFILES=$LAB_DIR/profiles
# The VM's /etc is its own: the profiles are in the default directory too,
# where nsvpn looks for a sudo user.
mkdir -p /etc/nsvpn && ln -sfn "$LAB_DIR/profiles" /etc/nsvpn/profiles
resolv_before=$(sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf)
routes_before=$(host_routes)

echo "# the kernel has WireGuard, and there is no wireguard-go to fall back to"
check "the wireguard module is loaded ($(uname -r))" grep -q '^wireguard ' /proc/modules
status_is "wireguard-go is not installed in the VM" 1 sh -c 'command -v wireguard-go'

echo "# two profiles that claim the same subnet, up at once, on kernel WireGuard"
check "up alpha" nsvpn up alpha
check "up bravo" nsvpn up bravo
expect "status --json of alpha reports the kernel implementation" kernel json alpha implementation
expect "status --json of bravo reports the kernel implementation" kernel json bravo implementation
check "status text says kernel" sh -c 'nsvpn status alpha | grep -E "^  vpn +wireguard, kernel$"'
expect "no wireguard-go process exists" "" pgrep wireguard-go
expect "no UAPI socket exists" "" sh -c 'ls /run/wireguard 2>/dev/null'
expect "the tunnel inside alpha is a kernel wireguard link" "wireguard" sh -c "ip -n nsvpn-alpha -d link show nsvt-alpha | grep -ow wireguard | head -n 1"
expect "no WireGuard link is left in the host namespace" "" sh -c "ip -d link show type wireguard"

echo "# the kernel's own view (wg, a second genetlink reader) is the profile's"
expect "alpha's public key comes from the profile's private key" "$(cat "$LAB_DIR/alpha/client.pub")" wg_inside alpha public-key
expect "alpha's peer and endpoint" "$(printf '%s\t203.0.113.2:51820' "$(cat "$LAB_DIR/alpha/server.pub")")" wg_inside alpha endpoints
expect "alpha's allowed IPs" "$(printf '%s\t10.20.0.0/16 10.99.0.0/24' "$(cat "$LAB_DIR/alpha/server.pub")")" wg_inside alpha allowed-ips
expect "bravo's peer and endpoint" "$(printf '%s\t203.0.113.6:51820' "$(cat "$LAB_DIR/bravo/server.pub")")" wg_inside bravo endpoints
check "alpha has completed a handshake" sh -c "wg_hs=\$(ip netns exec nsvpn-alpha wg show nsvt-alpha latest-handshakes | cut -f2); [ \"\$wg_hs\" -gt 0 ]"
expect "the keepalive nsvpn used to start the handshake is off again (the file sets none)" \
  "$(printf '%s\toff' "$(cat "$LAB_DIR/alpha/server.pub")")" wg_inside alpha persistent-keepalive
check "the gateway's kernel saw the handshake" sh -c "[ \"\$(ip netns exec lab-gw-alpha wg show lgw0 latest-handshakes | cut -f2)\" -gt 0 ]"

echo "# IPv6 inside only if the VPN provides it (bravo's does, alpha's does not)"
expect "alpha: only lo's ::1 inside" "lo ::1/128" v6_of alpha
expect "bravo: fd99::2 on the kernel tunnel, no IPv6 on the veth" "lo ::1/128
nsvt-bravo fd99::2/128" sh -c "v6_of bravo | grep -v 'nsvt-bravo fe80'"
expect "bravo reaches its gateway over IPv6" "1 received" sh -c "as_user nsvpn exec bravo -- ping -6 -c1 -W2 fd99::1 | grep -o '1 received'"

echo "# each exec reaches its own side, by name, through its own DNS"
expect "alpha's exec reaches alpha's server" alpha side alpha
expect "bravo's exec reaches bravo's server" bravo side bravo
expect "getent inside alpha resolves db.internal via alpha's DNS" "10.20.1.5 db.internal" sh -c "nsvpn exec alpha -- getent hosts db.internal | tr -s ' '"
expect "only alpha's dnsmasq knows only-alpha.internal" "10.20.9.0" sh -c "nsvpn exec alpha -- getent hosts only-alpha.internal | cut -d' ' -f1"
status_is "bravo cannot resolve alpha's names" 2 nsvpn exec bravo -- getent hosts only-alpha.internal
expect "a [hosts] entry lands in bravo's /etc/hosts" "10.20.0.1 gateway.bravo" sh -c "nsvpn exec bravo -- getent hosts gateway.bravo | tr -s ' '"
expect "resolv.conf inside alpha is the profile's" "nameserver 10.20.0.53" sh -c "nsvpn exec alpha -- grep ^nameserver /etc/resolv.conf"
check "status shows traffic counted by the kernel" sh -c '[ "$(nsvpn status alpha --json | tr -d " \n" | grep -o "\"rx_bytes\":[0-9]*" | head -n 1 | cut -d: -f2)" -gt 0 ]'

echo "# the command runs as the invoking user, with no capabilities"
expect "uid, gid and groups are the sudo user's" "65534 65534 65534" as_user nsvpn exec alpha -- sh -c 'echo $(id -u) $(id -g) $(id -G)'
expect "no capability in any set but the bounding set; no_new_privs" "CapInh:0000000000000000 CapPrm:0000000000000000 CapEff:0000000000000000 CapAmb:0000000000000000 NoNewPrivs:1" \
  as_user nsvpn exec alpha -- sh -c "grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs)' /proc/self/status | tr -d '\t' | tr '\n' ' ' | sed 's/ \$//'"

echo "# the host is untouched"
expect "the host's routes are unchanged (but for the veth links)" "$routes_before" host_routes
expect "the host's resolv.conf, hosts, nsswitch.conf are unchanged" "$resolv_before" sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf
status_is "the host has no route to 10.20.1.5" 2 sh -c "ip route get 10.20.1.5 >/dev/null 2>&1 || exit 2"
status_is "the host cannot resolve db.internal" 2 getent hosts db.internal

echo "# kill switch: with alpha's kernel tunnel gone, nothing from inside reaches anything"
ip -n nsvpn-alpha link del nsvt-alpha
unreachable "the server is unreachable" inside alpha ping -c1 -W1 10.20.1.5
unreachable "the gateway's public address is unreachable" inside alpha ping -c1 -W1 203.0.113.2
unreachable "the other VPN's gateway is unreachable" inside alpha ping -c1 -W1 203.0.113.6
unreachable "an address beyond the host is unreachable (IPv6 too)" inside alpha ping -6 -c1 -W1 2001:db8::1
expect "no route inside but the veth's own /30" "1" sh -c "ip -n nsvpn-alpha -4 route | wc -l"
check "the host's veth end is still reachable" inside alpha ping -c1 -W1 "$(json alpha host)"
no_escape alpha
expect "status says broken" broken json alpha state
status_is "exec into the broken profile is refused (125)" 125 as_user nsvpn exec alpha -- true
grep -q "profile alpha is broken: its tunnel device nsvt-alpha is gone" /tmp/out && ok "... and says why" || { fail "... and says why"; cat /tmp/out; }
expect "bravo is unaffected" bravo side bravo
check "down cleans up after the lost tunnel" nsvpn down alpha
check "and up works again" nsvpn up alpha
expect "alpha reaches its server again" alpha side alpha

echo "# a failed up leaves no kernel link behind"
sed 's/^Endpoint = .*/Endpoint = 203.0.113.2:51999/' "$LAB_DIR/profiles/alpha.conf" > "$LAB_DIR/profiles/dead.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "dead.conf"\n' > "$LAB_DIR/profiles/dead.toml"
status_is "up with an endpoint that never answers fails" 1 nsvpn up dead --timeout 2
grep -q "no WireGuard handshake after 2.0 s" /tmp/out && ok "the error names the wait" || { fail "the error names the wait"; cat /tmp/out; }
expect "nothing of dead is left" "" sh -c "ls /run/netns | grep nsvpn-dead; ip -br link | grep -- '-dead'; ls /etc/netns /run/nsvpn | grep dead"

echo "# a ListenPort another profile holds: the kernel refuses it (EADDRINUSE), and up says whose it is"
check "down bravo (porta takes its place)" nsvpn down bravo
sed '/^\[Interface\]/a ListenPort = 51900' "$LAB_DIR/profiles/bravo.conf" > "$LAB_DIR/profiles/porta.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "porta.conf"\n' > "$LAB_DIR/profiles/porta.toml"
printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.3/32\nListenPort = 51900\n[Peer]\nPublicKey = %s\nEndpoint = 203.0.113.2:51820\nAllowedIPs = 10.20.0.0/16\n' \
  "$(wg genkey)" "$(cat "$LAB_DIR/alpha/server.pub")" > "$LAB_DIR/profiles/portb.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "portb.conf"\n' > "$LAB_DIR/profiles/portb.toml"
check "up porta, on kernel WireGuard, listening on 51900" nsvpn up porta
status_is "up portb, which wants 51900 too, fails" 1 nsvpn up portb --timeout 2
grep -q 'portb.conf): ListenPort 51900 is in use by profile "porta", which is up' /tmp/out \
  && ok "... naming the port and the profile that holds it" || { fail "... naming the port and the profile that holds it"; cat /tmp/out; }
expect "nothing of portb is left (no kernel link either)" "" sh -c "ls /run/netns /etc/netns /run/nsvpn | grep portb; ip -br link | grep -- '-portb'"
check "down porta, up bravo again" sh -c "nsvpn down porta && nsvpn up bravo"
rm -f "$LAB_DIR"/profiles/port[ab].*

echo "# IPsec on the kernel path: an XFRM interface per profile, beside kernel WireGuard on the same subnet"
t_ipsec=$(date +%s)
xfrm_host() { ip xfrm policy; ip xfrm state; }
rules_before=$(ip rule; ip -6 rule)
t220_before=$(ip route show table 220 2>&1)
check "the xfrm_interface module is loaded" grep -q '^xfrm_interface ' /proc/modules
check "the lab's strongSwan gateway loaded its connections" grep -q "loaded connection 'rw'" "$LAB_DIR/echo/swanctl.log"
[ "$failed" = 0 ] || { tail -n 5 "$LAB_DIR/echo/swanctl.log" "$LAB_DIR/echo/server.log" "$LAB_DIR/echo/charon.log"; }
expect "the host's XFRM database is empty before" "" xfrm_host
status_is "up echo (IPsec, the path left to nsvpn)" 0 nsvpn up echo
check "... on the kernel path, naming the if_id" grep -q "IPsec, kernel, XFRM interface if_id 0x" /tmp/out || grep -E "proposal|SAD|KNL" /tmp/out | head -n 20
expect "no supervisor runs on the kernel path (charon re-establishes by itself)" "" sh -c "pgrep -af '[i]psec-supervise echo'; nsvpn status echo | grep -i supervisor"
if_id=$(ip -n nsvpn-echo -d link show nsvt-echo | grep -o 'if_id 0x[0-9a-f]*' | cut -d' ' -f2)
expect "echo's tunnel inside is an XFRM interface with an if_id of its own" "xfrm 1" sh -c "echo \$(ip -n nsvpn-echo -d link show nsvt-echo | grep -ow xfrm | head -n 1) \$([ -n '$if_id' ] && echo 1)"
expect "no XFRM interface is left on the host" "" sh -c "ip -d link show | grep -w xfrm"
expect "no TUN device anywhere (no kernel-libipsec on the client)" "" sh -c "ip -d link show | grep 'tun type'; ip -n nsvpn-echo -d link show | grep 'tun type'"
expect "the virtual IP from the configuration payload is on the XFRM interface, inside" "nsvt-echo 10.7.0.1/32" sh -c "ip -n nsvpn-echo -4 -br addr show dev nsvt-echo | awk '{sub(/@.*/, \"\", \$1); print \$1, \$3}'"
expect "the gateway's network is routed inside, on it" "10.20.0.0/16" sh -c "ip -n nsvpn-echo -4 route show dev nsvt-echo | cut -d' ' -f1"
expect "echo's exec reaches echo's server by name (DNS from the payload)" echo side echo
expect "alpha (kernel WireGuard, same subnet) still reaches alpha's" alpha side alpha
expect "bravo too" bravo side bravo
# The policies (in, out, fwd; charon's per-socket bypass policies on its
# own IKE sockets aside) and the two states, each with echo's if_id.
expect "every XFRM policy on the host is bound to echo's if_id $if_id (in, out, fwd)" "3 3" sh -c "echo \$(ip xfrm policy | grep -cE '^\s*dir (in|out|fwd)') \$(ip xfrm policy | grep -c 'if_id $if_id')"
expect "every XFRM state on the host is bound to it too, with reqid = if_id" "2 2 2" sh -c "echo \$(ip xfrm state | grep -c '^src') \$(ip xfrm state | grep -c 'if_id $if_id') \$(ip xfrm state | grep -c 'reqid $((if_id))')"
expect "the host's routes are unchanged (but for the veth links)" "$routes_before" host_routes
expect "the host's rules are unchanged (charon adds none: routing_table = 0)" "$rules_before" sh -c "ip rule; ip -6 rule"
expect "the host's table 220 is unchanged" "$t220_before" ip route show table 220
expect "the host's resolv.conf, hosts, nsswitch.conf are unchanged" "$resolv_before" sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf
out_packets() { nsvpn status echo --json | tr -d ' \n' | grep -o '"packets_out":[0-9]*' | cut -d: -f2; }
# The host's own packet to the gateway's protected network: given a plain
# route there, it leaves in the clear (the gateway forwards it and answers),
# never into echo's SA, whose policy matches only echo's if_id.
ip route add 10.20.0.0/16 via "$(lab_gw_ip 4)"
before_out=$(out_packets)
tcpdump --immediate-mode -i lab-up4 -nn -U -Z root -w /run/host-ping.pcap > /run/host-ping.log 2>&1 &
tpid=$!
for _ in $(seq 100); do grep -q "listening on" /run/host-ping.log && break; sleep 0.05; done
status_is "the host reaches 10.20.1.5 through a plain route" 0 ping -c1 -W3 10.20.1.5
sleep 0.3; kill -INT $tpid; wait $tpid 2>/dev/null
ip route del 10.20.0.0/16 via "$(lab_gw_ip 4)"
n=$(tcpdump -Z root -nn -r /run/host-ping.pcap 'icmp and src host 203.0.113.17 and dst host 10.20.1.5' 2>/dev/null | grep -c 'echo request')
expect "... in the clear on the uplink: an ICMP echo request from the host's own address" "1" echo "$n"
[ "$n" = 1 ] || { tcpdump -Z root -nn -r /run/host-ping.pcap 2>&1 | head; cat /run/host-ping.log; ip route get 10.20.1.5; } | sed 's/^/       /'
expect "... and no ESP (or ESP in UDP) left the host meanwhile" "0" sh -c "tcpdump -nn -r /run/host-ping.pcap 'esp or (udp and not port 53)' 2>/dev/null | wc -l"
expect "... and echo's SA counted no packet of it" "$before_out" out_packets
rm -f /run/host-ping.pcap /run/host-ping.log

echo "# IPsec kernel path: the gateway restarts, and the profile comes back by itself"
kill "$(cat "$LAB_DIR/echo/server.pid")"; for _ in $(seq 100); do kill -0 "$(cat "$LAB_DIR/echo/server.pid")" 2>/dev/null || break; sleep 0.05; done
t0=$(date +%s)
lab_ipsec_server echo
back=no
for _ in $(seq 60); do [ "$(side echo 2>/dev/null)" = echo ] && { back=yes; break; }; sleep 0.5; done
t1=$(date +%s)
expect "echo reaches its server again without down/up (in $((t1 - t0)) s, bound 30 s)" "yes $((t1 - t0 <= 30))" echo "$back 1"
grep -q "received DELETE for IKE_SA" /run/nsvpn/echo/private/ipsec/charon.log && ok "... after the gateway deleted the SA (charon's log)" || fail "... after the gateway deleted the SA (charon's log)"
expect "status says up, with the same virtual IP on the interface" "up nsvt-echo 10.7.0.1/32" echo "$(json echo state)" "$(ip -n nsvpn-echo -4 -br addr show dev nsvt-echo | awk '{sub(/@.*/, "", $1); print $1, $3}')"
expect "the new SAs are bound to the same if_id" "2 2" sh -c "echo \$(ip xfrm state | grep -c '^src') \$(ip xfrm state | grep -c 'if_id $if_id')"

echo "# IPsec kernel path: down deletes the SAs and leaves nothing"
# A `side` that failed while the SA was being rebuilt can leave its
# `timeout 5 bash` running for its 5 s (reparented to init): --kill ends it.
left=$(ps -o ppid,args | grep -v grep | grep -c '^ *1 timeout 5 bash')
[ "$left" = 0 ] || echo "       note: $left exec'd command(s) of the restart loop still running (ppid 1); down --kill ends them"
check "down echo" nsvpn down echo --kill
expect "no XFRM state or policy is left on the host" "" xfrm_host
expect "no XFRM interface anywhere (host or a profile)" "" sh -c "ip -d link show | grep -w xfrm; for n in \$(ip netns list | cut -d' ' -f1 | grep -v '^lab-'); do ip -n \$n -d link show | grep -w xfrm; done"
expect "nothing of echo is left" "" leftovers_of echo
expect "the host's rules are as before" "$rules_before" sh -c "ip rule; ip -6 rule"
echo "# IPsec kernel path: charon killed"
check "up echo again" nsvpn up echo
expect "echo reaches its server" echo side echo
pid=$(pgrep -f '^/usr/lib/ipsec/charon nsvt-echo$')
kill -9 "$pid"; for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
expect "status says broken: charon is not running" broken json echo state
status_is "exec is refused while broken" 125 as_user nsvpn exec echo -- true
no_escape echo
# What the kernel keeps: the SAs and policies charon installed outlive it.
echo "       (after the kill: $(ip xfrm state | grep -c '^src') XFRM states, $(ip xfrm policy | grep -c '^src') policies on the host)"
# The kill switch on this path: the SAs outlive charon, so what the
# namespace sends still leaves through them, encrypted to the gateway (ESP
# in UDP here: charon's ports are not 500/4500), never in the clear. The
# answers do not come back: the kernel takes ESP in UDP only on a socket
# that asked for it (UDP_ENCAP), which was charon's.
tcpdump --immediate-mode -i lab-up4 -nn -U -Z root -w /run/kill.pcap > /run/kill.log 2>&1 &
tpid=$!
for _ in $(seq 100); do grep -q "listening on" /run/kill.log && break; sleep 0.05; done
if ip netns exec nsvpn-echo ping -c1 -W1 10.20.1.5 > /dev/null 2>&1; then answered=answered; else answered="not answered"; fi
sleep 0.3; kill -INT $tpid; wait $tpid 2>/dev/null
expect "after the kill a ping from inside leaves encrypted to the gateway, none in the clear ($answered)" "1 0" sh -c "echo \$(tcpdump -Z root -nn -r /run/kill.pcap 'udp and src host 203.0.113.17 and dst host $(lab_gw_ip 4) and dst port 4500' 2>/dev/null | wc -l) \$(tcpdump -Z root -nn -r /run/kill.pcap 'icmp and host 10.20.1.5' 2>/dev/null | wc -l)"
rm -f /run/kill.pcap /run/kill.log
check "down echo" nsvpn down echo
expect "nothing of echo is left (namespace, link, process, file)" "" leftovers_of echo
expect "down removed the SAs and policies the killed charon left (XFRM netlink): states, policies" "0 0" sh -c "echo \$(ip xfrm state | grep -c '^src') \$(ip xfrm policy | grep -cE '^\s*dir (in|out|fwd)')"

echo "# IPsec kernel path: a wrong pre-shared key, and a gateway that is down, fail clearly and leave nothing"
P=$LAB_DIR/profiles
(umask 077; echo "not the key" > "$P/badpsk.psk")
sed 's/^psk_file = .*/psk_file = "badpsk.psk"/' "$P/echo.toml" > "$P/badpsk.toml"
status_is "up with a wrong pre-shared key fails" 1 nsvpn up badpsk -v
check "... saying: authentication failed, the gateway refused the pre-shared key" grep -q "authentication failed: the gateway refused the pre-shared key (check vpn.psk_file" /tmp/out
check "... on the kernel path (an XFRM interface was made)" grep -q "IPsec path: Kernel" /tmp/out
sed 's/^server = .*/server = "203.0.113.99"/' "$P/echo.toml" > "$P/ipsecdown.toml"
status_is "up to a gateway that is down fails (--timeout 2)" 1 nsvpn up ipsecdown --timeout 2 -v
check "... saying it timed out" grep -q "charon did not connect: timed out: no tunnel from 203.0.113.99 in 2 s" /tmp/out
check "... on the kernel path" grep -q "IPsec path: Kernel" /tmp/out
failed_left() { leftovers_of badpsk; leftovers_of ipsecdown; }
expect "nothing of either is left (namespace, link, process, file)" "" failed_left
expect "no XFRM interface, state or policy is left on the host" "" sh -c "ip -d link show | grep -w xfrm; ip xfrm state; ip xfrm policy | grep -E '^\s*dir (in|out|fwd)'"
rm -f "$P"/{badpsk,ipsecdown}.*

echo "# (the IPsec checks took $(( $(date +%s) - t_ipsec )) s)"

echo "# down removes every trace"
check "down alpha" nsvpn down alpha
check "down bravo" nsvpn down bravo
expect "no namespace, link, socket, file or mount is left" "" leftovers
expect "no WireGuard link exists outside the lab's gateways" "" sh -c "ip -d link show type wireguard; for n in \$(ip netns list | cut -d' ' -f1 | grep -v '^lab-gw-'); do ip -n \$n -d link show type wireguard; done"

summary
