# Check helpers shared by the integration suite (suite.sh) and the VM
# scenario (vm-scenario.sh). Each check prints one "ok"/"FAIL" line; summary
# prints "N passed, M failed" and fails when any check did.
passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() { local d=$1; shift; if out=$("$@" 2>&1); then ok "$d"; else fail "$d"; echo "$out" | sed 's/^/       /' | tail -n 15; fi; }
# expect DESCRIPTION WANTED COMMAND...: passes when the output equals WANTED.
expect() {
  local d=$1 want=$2; shift 2
  local got; got=$("$@" 2>&1)
  if [ "$got" = "$want" ]; then ok "$d"; else fail "$d"; echo "       wanted: $want"; echo "$got" | sed 's/^/       got:    /' | tail -n 15; fi
}
# status_of DESCRIPTION CODE COMMAND...: passes when the command exits CODE.
status_is() { local d=$1 want=$2; shift 2; "$@" > /tmp/out 2>&1; local rc=$?; if [ "$rc" = "$want" ]; then ok "$d"; else fail "$d (exit $rc, wanted $want)"; tail -n 10 /tmp/out | sed 's/^/       /'; fi; }

as_user() { SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody "$@"; }
# v6_of PROFILE: "link address" for each IPv6 address inside the profile.
v6_of() { ip -n "nsvpn-$1" -6 -br addr | awk '{for (i=3;i<=NF;i++) printf "%s %s\n", $1, $i}' | sort; }
export -f as_user v6_of
# IPv6 link-local entries come and go as links finish DAD: leave them out.
host_routes() { { ip -4 route show table all; ip -6 route show table all; } | grep -v -e ' dev nsvh-' -e 'fe80' | sort; }
# leftovers: one line per trace of nsvpn on the machine (none: empty).
leftovers() {
  ip netns list | grep -o '^nsvpn-[^ ]*' | sed 's/^/netns /'
  ip -br link | awk '{print $1}' | grep -E '^nsv[hnt]-' | sed 's/^/link /'
  pgrep -af 'wireguard-go|openvpn|openconnect|charon' | grep ' nsvt-' | sed 's/^/process /'
  # an IPsec profile's charon adds a (mark-only) rule for its own table,
  # 0x6e760000-0x6e76ffff
  ip rule | awk '{for (i=1;i<NF;i++) if ($i == "lookup" && $(i+1) >= 1853227008 && $(i+1) <= 1853292543) print "rule " $0}'
  ls /etc/netns 2>/dev/null | sed 's/^/etc-netns /'
  ls -A /run/nsvpn 2>/dev/null | sed 's/^/run-nsvpn /'
  ls /run/wireguard 2>/dev/null | grep nsvt- | sed 's/^/socket /'
  awk '$5 ~ "^/run/netns/nsvpn-" || $5 ~ "^/etc/(resolv.conf|hosts|nsswitch.conf)$" {print "mount " $5}' /proc/self/mountinfo
  true
}
# leftovers_of PROFILE: the lines of leftovers that are PROFILE's.
leftovers_of() { leftovers | grep -E -- "[ -]$1(\$|[.@ ])"; true; }

# inside PROFILE CMD...: runs CMD in the namespace as nobody, the way a shell
# started before the tunnel died goes on running there.
inside() { local p=$1; shift; ip netns exec "nsvpn-$p" setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
# unreachable DESCRIPTION COMMAND...: passes when the command fails with
# "Network is unreachable" (no route at all, so nothing was sent).
unreachable() { local d=$1; shift; if out=$("$@" 2>&1); then fail "$d (it answered)"; elif echo "$out" | grep -q "Network is unreachable"; then ok "$d"; else fail "$d"; echo "$out" | sed 's/^/       /'; fi; }

summary() {
  echo
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# no_escape PROFILE [leaky]: with the profile's tunnel dead, sends IPv4 and
# IPv6 probes from inside (ping, TCP, UDP) to the VPN's network, the
# gateways, addresses beyond the host (the lab's internet, which the host
# reaches by its default route, among them) and IPv6 multicast, while tcpdump
# captures on the host's veth end (the only way out but the dead tunnel).
# Passes when the capture holds the control ping to the host's veth end and
# nothing else but ARP between the two veth ends; with "leaky" (the check's
# own control), passes when something else was captured.
no_escape() {
  local p=$1 st host ns dev cap=/run/capture-$1.pcap
  st=$(nsvpn status "$p")
  dev=$(echo "$st" | sed -n 's/.* \/ \(nsvh-[^ ]*\) (host)$/\1/p')
  ns=$(echo "$st" | awk '$1 == "veth" {print $2}')
  host=$(echo "$st" | awk '$1 == "veth" {print $6}')
  tcpdump --immediate-mode -Q in -i "$dev" -nn -U -Z root -w "$cap" > "/run/tcpdump-$p.log" 2>&1 &
  local tpid=$! a
  for _ in $(seq 100); do grep -q "listening on" "/run/tcpdump-$p.log" && break; sleep 0.05; done
  for a in 10.20.1.5 10.20.0.53 203.0.113.2 203.0.113.6 203.0.113.10 192.0.2.1 1.1.1.1 \
    "$LAB_INET_WWW" "$LAB_INET_DNS" fd99::1 2001:db8::1 2606:4700:4700::1111 ff02::1; do
    inside "$p" ping -c1 -W1 "$a" > /dev/null 2>&1
    inside "$p" timeout 1 bash -c "echo x > /dev/udp/$a/53; exec 3<> /dev/tcp/$a/5432" > /dev/null 2>&1
  done
  inside "$p" ping -c1 -W1 "$host" > /dev/null 2>&1   # the control: must be seen
  local seen=0 others d="$p: a capture on the host's veth end saw only the control ping to it (probes: ping, TCP, UDP, IPv4 and IPv6)"
  for _ in $(seq 50); do   # until the control is on file (a slow VM), at most 5 s
    seen=$(tcpdump -Z root -nn -r "$cap" "icmp and src host $ns and dst host $host" 2>/dev/null | wc -l)
    [ "$seen" -ge 1 ] && break; sleep 0.1
  done
  sleep 0.2; kill -INT "$tpid"; wait "$tpid" 2>/dev/null
  others=$(tcpdump -Z root -nn -r "$cap" "not (arp and host $ns and host $host) and not (icmp and host $ns and host $host)" 2>/dev/null)
  if [ "${2:-}" = leaky ]; then
    d="control: with a route out by the veth, the same capture catches the leak"
    [ "$seen" -ge 1 ] && [ -n "$others" ] && ok "$d" || fail "$d (control packets: $seen, others: ${others:-none})"
  elif [ "$seen" -ge 1 ] && [ -z "$others" ]; then
    ok "$d"
  else
    fail "$d (control packets: $seen)"; echo "$others" | sed 's/^/       /' | head -n 15
    [ "$seen" -ge 1 ] || { sed "s/^/       tcpdump: /" "/run/tcpdump-$p.log"; tcpdump -Z root -nn -r "$cap" 2>&1 | head -n 8; echo "dev=$dev ns=$ns host=$host"; }
  fi
  rm -f "$cap" "/run/tcpdump-$p.log"
  # busybox's timeout (the VM's) leaves a watcher process inside for up to a
  # second after its command ended: let the probes' processes go before the
  # caller goes on (a `down` would refuse them).
  for _ in $(seq 60); do [ -z "$(ip netns pids "nsvpn-$p")" ] && break; sleep 0.05; done
}
