# The hostile-profile corpus (tests/hostile/, see tests/hostile.rs), run with
# the real binary as root: each case must exit with nsvpn's error status (1),
# print exactly the error its snapshot holds, and leave the machine as it was.
# Sourced by suite.sh.

echo "# hostile and broken profiles: one clear error, status 1, nothing changed"
corpus=$(cd "$here/../tests/hostile" && pwd)
repo=$(cd "$here/.." && pwd)
machine_state() {
  ip netns list; ip -br link; ip -br addr; host_routes
  ls -A /run/nsvpn /etc/netns /run/wireguard 2>/dev/null
  pgrep -af 'wireguard-go|openvpn|openconnect|charon' | grep -v -e lab- -e 'charon$'
  awk '{print $5}' /proc/self/mountinfo | sort
  ls /run/pwned 2>/dev/null
}
before=$(machine_state)
for case in "$corpus"/*/; do
  id=$(basename "$case")
  name=x; [ -f "$case/name" ] && name=$(cat "$case/name")
  want="nsvpn: error: $(awk 'n >= 2; /^---$/ {n++}' "$repo/tests/snapshots/hostile@$id.snap" | sed "s|\$REPO|$repo|g")"
  # (A checkout leaves the corpus's key files 0644: that warning is expected.)
  nsvpn --profiles "$case" up "$name" > /run/hostile.out 2> /run/hostile.all; rc=$?
  grep -v '^nsvpn: warning: .* holds secrets but is accessible by group or others' /run/hostile.all > /run/hostile.err
  if [ "$rc" = 1 ] && [ "$(cat /run/hostile.err)" = "$want" ] && [ ! -s /run/hostile.out ] && [ "$(machine_state)" = "$before" ]; then
    ok "$id: status 1, the snapshot's error, nothing changed"
  else
    fail "$id: status $rc (wanted 1)"; diff <(echo "$want") /run/hostile.err | sed 's/^/       /' | head -n 8
    diff <(echo "$before") <(machine_state) | sed 's/^/       state: /' | head -n 8
  fi
done
rm -f /run/hostile.out /run/hostile.err /run/hostile.all
