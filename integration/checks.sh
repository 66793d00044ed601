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
leftovers() {
  local out=""
  out+=$(ip netns list | grep -o '^nsvpn-[^ ]*' | sed 's/^/netns /')
  out+=$(ip -br link | awk '{print $1}' | grep -E '^nsv[hnt]-' | sed 's/^/link /')
  out+=$(pgrep -af 'wireguard-go|openvpn|openconnect' | grep ' nsvt-' | sed 's/^/process /')
  out+=$(ls /etc/netns 2>/dev/null | sed 's/^/etc-netns /')
  out+=$(ls -A /run/nsvpn 2>/dev/null | sed 's/^/run-nsvpn /')
  out+=$(ls /run/wireguard 2>/dev/null | grep nsvt- | sed 's/^/socket /')
  out+=$(awk '$5 ~ "^/run/netns/nsvpn-" || $5 ~ "^/etc/(resolv.conf|hosts|nsswitch.conf)$" {print "mount " $5}' /proc/self/mountinfo)
  echo -n "$out"
}

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
