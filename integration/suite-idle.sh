# Connect on demand, disconnect when idle (idle_timeout): sourced by
# suite.sh. A copy of alpha (wireguard-go) with idle_timeout = "2s" and a
# kept forward to its database. It goes down by itself once idle, logs why
# and leaves nothing; not while a command runs inside, nor while a kept
# forward has a connection open, nor while short execs keep coming; exec
# and forward bring it up again; a teardown under way makes exec wait, not
# fail; down ends the watcher. The watcher looks every 500 ms here.
echo "# idle_timeout: down by itself when idle, up again on demand"
alpha_was_up=$(nsvpn status alpha --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
check "down alpha (its key serves the idle copy)" nsvpn down alpha
ip=idle
sed 's/^description = .*/description = "idle copy of alpha"\nidle_timeout = "2s"/' "$LAB_DIR/profiles/alpha.toml" > "$LAB_DIR/profiles/$ip.toml"
printf 'userspace = true\n[forward]\nports = ["15471:db.internal:5432"]\n' >> "$LAB_DIR/profiles/$ip.toml"
# idle_up: whether the profile is up (its namespace is there).
idle_up() { [ -e /run/netns/nsvpn-$ip ]; }
# idle_down_within MS: waits up to MS ms for the profile to be gone, then
# prints how long it took (ms), or "still up".
# The time is counted from T0 (date +%s%N) when given: when the last use
# ended, which may be before the caller got to look (a loaded machine).
idle_down_within() {
  local t0 left; t0=${2:-$(date +%s%N)}
  for _ in $(seq $(($1 / 20))); do
    if ! idle_up && [ ! -e /run/nsvpn/$ip ]; then echo $((($(date +%s%N) - t0) / 1000000)); return 0; fi
    sleep 0.02
  done
  echo "still up"; return 1
}
json_of() { nsvpn status $ip --json | python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }
# idle_traces: anything of the profile left on the machine.
idle_traces() {
  leftovers_of $ip; ls -A /run/nsvpn | grep -x -e $ip -e $ip.lock
  pgrep -af "nsvt-$ip|nsvpn (idle-watch|kept-forwards) $ip\$"; true
}

check "up $ip (idle_timeout = \"2s\", a kept forward)" nsvpn up $ip
# The watcher's log, read by its descriptor: the teardown removes the file.
tail -n +1 -f /run/nsvpn/$ip/idle-watch.log > /run/idle-why.log 2>&1 & tailer=$!
expect "status: the watcher is a part, running" "watcher ok" bash -c "nsvpn status $ip | sed -n 's/^  parts .*, \(watcher [a-z]*\)\$/\1/p'"
expect "status: connected for, idle for and when it goes down" "yes yes" \
  bash -c "nsvpn status $ip | grep -qE '^  connected for  [0-9]+ s\$' && echo -n 'yes '; nsvpn status $ip | grep -qE '^  idle           for [0-9]+ s; goes down in [0-9]+ s \(idle_timeout 2s\)\$' && echo yes"
expect "status --json: connected_for, idle.timeout, idle_for, goes_down_in" "True 2 True True" \
  json_of "r['connected_for'] >= 0, r['idle']['timeout'], r['idle']['idle_for'] + r['idle']['goes_down_in'] == 2, 'in_use' not in r['idle']"
took=$(idle_down_within 5000)
[ "$took" != "still up" ] && ok "idle, it goes down by itself ($took ms after the checks above)" || fail "idle, it goes down by itself (still up after 5 s)"
sleep 0.2; kill "$tailer" 2>/dev/null; wait "$tailer" 2>/dev/null
grep -q "^nsvpn: profile $ip goes down by itself: unused for 2 s (idle_timeout 2s); last used by up\$" /run/idle-why.log \
  && grep -q "^nsvpn: profile $ip is down (idle_timeout; teardown took [0-9]* ms); \`nsvpn exec $ip\` brings it up again\$" /run/idle-why.log \
  && ok "... and its log says why, then that it is down" || { fail "... and its log says why, then that it is down"; sed 's/^/       /' /run/idle-why.log; }
expect "... leaving nothing: namespace, links, /etc/netns, /run/nsvpn/$ip, the lock, processes" "" idle_traces
expect "status says down" "down" json_of "r['state']"

echo "# a command inside keeps it up; exec brings it up again"
{ as_user nsvpn exec $ip -- sleep 4 > /run/idle-exec.log 2>&1; date +%s%N > /run/idle-ended; } & sleeper=$!
for _ in $(seq 250); do idle_up && [ -n "$(ip netns pids nsvpn-$ip)" ] && break; sleep 0.02; done
check "exec brought it up" grep -q "profile $ip is down; bringing it up" /run/idle-exec.log
sleep 3
check "3 s later (idle_timeout 2s), with sleep inside, it is still up" idle_up
expect "status: in use, by the process inside" "1 process inside" json_of "r['idle']['in_use']"
wait "$sleeper"
took=$(idle_down_within 4000 "$(cat /run/idle-ended)")
[ "$took" != "still up" ] && [ "$took" -ge 1950 ] && ok "once the command ended, it goes down, no sooner than 2 s after ($took ms)" \
  || fail "once the command ended, it goes down, no sooner than 2 s after ($took ms)"

echo "# a kept forward's open connection keeps it up"
check "up $ip" nsvpn up $ip
ns_ino=$(stat -L -c %i /run/netns/nsvpn-$ip)
# A connection through the kept forward, open for 3.5 s with nothing sent.
bash -c 'exec 3<>/dev/tcp/127.0.0.1/15471; sleep 3.5; exec 3>&-; date +%s%N > /run/idle-ended' & holder=$!
sleep 2.5
expect "status: in use, by the forward's connection" "1 forward connection open" json_of "r['idle']['in_use']"
sleep 0.7
check "3 s later, with the connection open, it is still up (the same namespace)" bash -c "[ \"\$(stat -L -c %i /run/netns/nsvpn-$ip)\" = $ns_ino ]"
wait "$holder"
took=$(idle_down_within 4000 "$(cat /run/idle-ended)")
[ "$took" != "still up" ] && [ "$took" -ge 1950 ] && ok "once the connection closed, it goes down, no sooner than 2 s after ($took ms)" \
  || fail "once the connection closed, it goes down, no sooner than 2 s after ($took ms)"

echo "# short execs, each between two looks of the watcher, keep it up"
check "up $ip" nsvpn up $ip
ns_ino=$(stat -L -c %i /run/netns/nsvpn-$ip)
for _ in 1 2 3 4; do as_user nsvpn exec $ip -- true; sleep 1.2; done
check "after 4.8 s of an exec every 1.2 s, it is still up (the same namespace)" bash -c "[ \"\$(stat -L -c %i /run/netns/nsvpn-$ip)\" = $ns_ino ]"
expect "status: last used by exec" "exec" bash -c "python3 -c 'import json; print(json.load(open(\"/run/nsvpn/$ip/idle.json\"))[\"by\"])'"

echo "# exec waits for a teardown under way, then brings it up again"
as_user nsvpn exec $ip -- sleep 3 > /dev/null 2>&1 & sleeper=$!
sleep 0.3
# The mark the watcher makes while it takes the profile down, with its pid
# (made by hand here, with this shell's: the sleep inside keeps the watcher
# from going down).
echo $$ > /run/nsvpn/$ip/going-down
as_user nsvpn exec $ip -- sh -c 'echo $NSVPN_PROFILE' > /run/idle-wait.log 2>&1 & waiter=$!
sleep 0.6
check "exec waits while the profile is going down" bash -c "kill -0 $waiter && grep -q 'profile $ip is going down by itself (idle_timeout); waiting for that to end' /run/idle-wait.log"
rm -f /run/nsvpn/$ip/going-down
wait "$waiter"; rc=$?
[ "$rc" = 0 ] && [ "$(tail -n 1 /run/idle-wait.log)" = "$ip" ] && ok "... and runs its command once it is over" || { fail "... and runs its command once it is over (exit $rc)"; cat /run/idle-wait.log; }
sh -c 'echo $$' > /run/nsvpn/$ip/going-down   # a watcher killed half-way: its pid is gone
expect "a mark whose watcher is gone makes exec wait for nothing" "$ip" as_user nsvpn exec $ip -- sh -c 'echo $NSVPN_PROFILE'
rm -f /run/nsvpn/$ip/going-down
wait "$sleeper"
idle_down_within 4000 > /dev/null

echo "# nsvpn forward brings it up, and keeps it up while it runs"
nsvpn forward $ip 15472:db.internal:5432 > /run/idle-fwd.log 2>&1 & fwd=$!
for _ in $(seq 250); do grep -q "forwarding" /run/idle-fwd.log && break; sleep 0.02; done
check "forward brought it up" grep -q "profile $ip is down; bringing it up" /run/idle-fwd.log
expect "... and a host-side psql reaches alpha's database through it" "alpha" psql -h 127.0.0.1 -p 15472 -U lab -d lab -Atc "select name from side"
sleep 2.5
check "3 s later, with the forward running, it is still up" idle_up
kill -INT "$fwd"; wait "$fwd" 2>/dev/null
check "down ends the watcher too" nsvpn down $ip
expect "... leaving nothing" "" idle_traces

rm -f "$LAB_DIR/profiles/$ip.toml" /run/idle-*.log
if [ "$alpha_was_up" = up ]; then check "up alpha again" nsvpn up alpha; fi
