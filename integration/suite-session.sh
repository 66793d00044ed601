# Living inside a profile (issue 15): a container in it (a real rootful
# podman, an image built here from busybox-static and psql, no registry),
# desktop programs (Xvfb and a real X client, a real session bus, the
# runtime directory's sockets) and single-instance programs (a stand-in
# named firefox running outside). The systemd service (`nsvpn unit`) is
# proven under a booted systemd by systemd-proof.sh. Sourced by suite.sh
# while alpha is up. Everything made here lives in $S (the sandbox's /run),
# in podman's own --root/--runroot there, and in a tmpfs over the sandbox's
# /tmp (X's sockets and locks); all of it is removed at the end.

S=/run/nsvpn-session
mkdir -p "$S"
# as nobody, without sudo's variables (a plain process of the user's);
# started in the background, $! is the command's own pid.
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
nobody_run() { "${NOBODY[@]}" "$@"; }
# the netns of a process, and alpha's
net_of() { readlink "/proc/$1/ns/net"; }
alpha_net=$(ip netns exec nsvpn-alpha readlink /proc/self/ns/net)

echo "# a container inside a profile: podman run \$(nsvpn podman-args alpha)"
P=(podman --root "$S/podman/root" --runroot "$S/podman/run" --tmpdir "$S/podman/tmp"
  --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --runtime runc)
img=$S/image
mkdir -p "$img/bin" "$img/etc" "$img/tmp"
cp /bin/busybox "$img/bin/"
for c in sh cat readlink nslookup; do ln -s busybox "$img/bin/$c"; done
cp "$PG_BIN/psql" "$img/bin/psql"
for lib in $(ldd "$PG_BIN/psql" | grep -o '/[^ ]*'); do
  mkdir -p "$img$(dirname "$lib")"; cp -L "$lib" "$img$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$img/etc/passwd"
printf 'hosts: files dns\n' > "$img/etc/nsswitch.conf"
tar -C "$img" -cf "$S/image.tar" .
check "a local image from files on this machine (busybox-static, psql and its libraries): podman import" \
  "${P[@]}" import -q "$S/image.tar" localhost/nsvpn-session:test
flags="--network=ns:/run/netns/nsvpn-alpha --volume=/etc/netns/nsvpn-alpha/resolv.conf:/etc/resolv.conf:ro --volume=/etc/netns/nsvpn-alpha/hosts:/etc/hosts:ro"
expect "nsvpn podman-args alpha prints the flags, run as the user without any privilege" "$flags" \
  nobody_run nsvpn podman-args alpha
podman_in() { local a; a=$(nsvpn podman-args alpha) || return 125; "${P[@]}" run --rm $a localhost/nsvpn-session:test "$@"; }
expect "the container's psql reaches alpha's database by name" alpha \
  podman_in psql -h db.internal -U lab -d lab -Atc "select name from side"
expect "... its network namespace is alpha's" "$alpha_net" podman_in readlink /proc/self/ns/net
expect "... its resolv.conf is the profile's" "$(cat /etc/netns/nsvpn-alpha/resolv.conf)" podman_in cat /etc/resolv.conf
expect "... busybox's own resolver (no NSS) asks alpha's DNS for db.internal" "Address: 10.20.1.5" \
  bash -c "$(declare -p P); $(declare -f podman_in); podman_in nslookup db.internal 2>&1 | grep '^Address: 10.20.1.5'"
unreachable "... the host's network (the lab's internet) is unreachable from the container" \
  podman_in psql -h "$LAB_INET_WWW" -p "$LAB_INET_HTTP_PORT" -U lab -d lab -c "select 1"
check "... and the public name the host resolves does not resolve in it" bash -c "$(declare -p P); $(declare -f podman_in); ! podman_in nslookup $LAB_INET_NAME"
status_is "podman-args of a profile that is down (charlie) fails" 1 bash -c "nsvpn podman-args charlie > $S/charlie.args"
grep -q "profile charlie is down: bring it up first" /tmp/out && ok "... saying to bring it up" || { fail "... saying to bring it up"; cat /tmp/out; }
status_is "... and a podman run that ignores the status fails on the missing namespace, not on the host's network" 125 \
  "${P[@]}" run --rm $(cat "$S/charlie.args") localhost/nsvpn-session:test true
grep -q "/run/netns/nsvpn-charlie" /tmp/out && ok "... naming it" || { fail "... naming it"; cat /tmp/out; }
expect "podman-args of a name that is not a profile's prints --network=none (no network at all)" "--network=none" \
  bash -c "nsvpn podman-args 'Bad/name' 2>/dev/null"
expect "no container is left, and nothing runs in alpha any more" "" \
  bash -c "$(declare -p P); \"\${P[@]}\" ps -aq; ip netns pids nsvpn-alpha; pgrep -af 'conmon|runc' | grep -v pgrep"
"${P[@]}" rmi -a > /dev/null 2>&1
"${P[@]}" system reset -f > /dev/null 2>&1
expect "podman's image and state are gone (podman rmi, system reset)" "" \
  bash -c "ls -A $S/podman 2>/dev/null | grep -v tmp; ls -A /run/containers /run/libpod 2>/dev/null"
rm -rf "$S/podman" "$img" "$S/image.tar" "$S/charlie.args"

echo "# desktop programs: X11 (Xvfb) through /tmp/.X11-unix with XAUTHORITY"
# The sandbox's own /tmp: X's sockets and lock files never reach the machine's.
mount -t tmpfs -o mode=1777 nsvpn-session-tmp /tmp
xa=$S/xauthority
: > "$xa"; xauth -q -f "$xa" add :87 . "$(mcookie)"
chown 65534:65534 "$xa"; chmod 600 "$xa"
Xvfb :87 -screen 0 320x200x24 -br -noreset -nolisten tcp -auth "$xa" > "$S/xvfb87.log" 2>&1 & xvfb87=$!
Xvfb :88 -screen 0 320x200x24 -br -noreset -nolisten tcp -nolisten unix > "$S/xvfb88.log" 2>&1 & xvfb88=$!
for _ in $(seq 200); do [ -S /tmp/.X11-unix/X87 ] && [ -e /tmp/.X88-lock ] && break; sleep 0.05; done
sleep 0.3
# non_black: the screen's pixels that are not black (Xvfb -br: a black root).
non_black() {
  XAUTHORITY=$xa xwd -root -display :87 -silent | xwdtopnm 2> /dev/null | tee "$S/screen.pnm" | python3 -c '
import sys
d = sys.stdin.buffer.read()
fields, i = [], 0
while len(fields) < 4:
    while d[i:i+1].isspace(): i += 1
    if d[i:i+1] == b"#":
        i = d.index(b"\n", i); continue
    j = i
    while not d[j:j+1].isspace(): j += 1
    fields.append(d[i:j]); i = j
i += 1
w, h, mx = int(fields[1]), int(fields[2]), int(fields[3])
step = 3 if mx < 256 else 6
px = d[i:i + w * h * step]
print(sum(1 for k in range(0, len(px), step) if any(px[k:k + step])))'
}
expect "control: before any client, the screenshot of Xvfb :87 is all black" 0 non_black
SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody DISPLAY=:87 XAUTHORITY="$xa" nsvpn exec alpha -- xmessage -geometry 200x80+20+20 -bg white -fg black "inside alpha" \
  > "$S/xmessage.log" 2>&1 & xclient=$!
for _ in $(seq 100); do XAUTHORITY=$xa xwininfo -display :87 -root -tree 2>/dev/null | grep -q '"xmessage"' && break; sleep 0.05; done
sleep 0.3
[ -d "/proc/$xclient" ] || { echo "       the X client ended:"; sed 's/^/       /' "$S/xmessage.log"; }
expect "an X client inside alpha (xmessage, as the sudo user) opens the display: its window is mapped" 1 \
  bash -c "XAUTHORITY=$xa xwininfo -display :87 -root -tree | grep -c '\"xmessage\": (\"xmessage\"'"
expect "... the client runs in alpha's network namespace (where X's abstract socket does not exist)" "$alpha_net" net_of "$xclient"
check "... and a screenshot shows its window (most of 200x80 pixels not black)" bash -c "n=\$($(declare -f non_black); xa=$xa S=$S non_black); echo \$n; [ \"\$n\" -gt 12000 ]"
pnmtopng "$S/screen.pnm" > "$S/screen.png" 2> /dev/null
kill "$xclient"; wait "$xclient" 2> /dev/null
expect "... without a word from nsvpn" "" grep '^nsvpn' "$S/xmessage.log"
status_is "a display with only the abstract socket (Xvfb :88 -nolisten unix) does not open inside" 1 \
  as_user env DISPLAY=:88 nsvpn exec alpha -- xmessage -timeout 1 x
grep -q "^nsvpn: warning: DISPLAY=:88: the X server has no socket /tmp/.X11-unix/X88, only the abstract one" /tmp/out \
  && ok "... and nsvpn warned before exec, saying why" || { fail "... and nsvpn warned before exec, saying why"; cat /tmp/out; }
check "control: outside the profile the same display opens (its abstract socket)" \
  nobody_run env DISPLAY=:88 xmessage -timeout 1 x
kill "$xvfb87" "$xvfb88"; wait "$xvfb87" "$xvfb88" 2> /dev/null

echo "# desktop programs: the session bus, Wayland and PulseAudio sockets in XDG_RUNTIME_DIR"
rt=/run/user/65534
mkdir -p "$rt/pulse"; chown -R 65534:65534 "$rt"; chmod 700 "$rt"
"${NOBODY[@]}" dbus-daemon --session --nofork --nopidfile --address="unix:path=$rt/bus" > "$S/bus.log" 2>&1 & bus=$!
"${NOBODY[@]}" dbus-daemon --session --nofork --nopidfile --address=unix:abstract=/nsvpn-session-bus > "$S/abus.log" 2>&1 & abus=$!
"${NOBODY[@]}" socat UNIX-LISTEN:"$rt/wayland-0",fork SYSTEM:'echo wayland' & way=$!
"${NOBODY[@]}" socat UNIX-LISTEN:"$rt/pulse/native",fork SYSTEM:'echo pulse' & pulse=$!
for _ in $(seq 100); do [ -S "$rt/bus" ] && [ -S "$rt/wayland-0" ] && [ -S "$rt/pulse/native" ] && break; sleep 0.05; done
sleep 0.2
getid='dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetId'
plain_sudo() { as_user env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS -u WAYLAND_DISPLAY -u DISPLAY "$@"; }
expect "under plain sudo (which drops them) the command gets the user's XDG_RUNTIME_DIR, WAYLAND_DISPLAY and session bus" \
  "$rt wayland-0 unix:path=$rt/bus" plain_sudo nsvpn exec alpha -- sh -c 'echo $XDG_RUNTIME_DIR $WAYLAND_DISPLAY $DBUS_SESSION_BUS_ADDRESS'
check "the session bus on a path answers inside (dbus-send GetId)" plain_sudo nsvpn exec alpha -- $getid
expect "the Wayland and PulseAudio sockets in XDG_RUNTIME_DIR answer inside" "wayland pulse" \
  plain_sudo nsvpn exec alpha -- sh -c 'echo $(socat - UNIX-CONNECT:$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY) $(socat - UNIX-CONNECT:$XDG_RUNTIME_DIR/pulse/native)'
expect "what the caller's environment has (sudo -E) is kept as it is" "/run/elsewhere wayland-1" \
  as_user env XDG_RUNTIME_DIR=/run/elsewhere WAYLAND_DISPLAY=wayland-1 nsvpn exec alpha -- sh -c 'echo $XDG_RUNTIME_DIR $WAYLAND_DISPLAY'
check "control: outside, an abstract-only session bus answers" nobody_run env DBUS_SESSION_BUS_ADDRESS=unix:abstract=/nsvpn-session-bus $getid
status_is "inside, the abstract-only session bus does not answer" 1 \
  as_user env DBUS_SESSION_BUS_ADDRESS=unix:abstract=/nsvpn-session-bus nsvpn exec alpha -- $getid
grep -q "^nsvpn: warning: the session bus (DBUS_SESSION_BUS_ADDRESS=unix:abstract=/nsvpn-session-bus) is an abstract socket" /tmp/out \
  && ok "... and nsvpn warned before exec, saying why" || { fail "... and nsvpn warned before exec, saying why"; cat /tmp/out; }
kill "$bus" "$abus" "$way" "$pulse"; wait "$bus" "$abus" "$way" "$pulse" 2> /dev/null

echo "# single-instance programs: a warning when one already runs outside for the same user"
mkdir -p "$S/bin" "$S/outside"
cp "$(command -v sleep)" "$S/outside/firefox"; cp "$(command -v sleep)" "$S/outside/slack"
printf '#!/bin/sh\necho "started inside $NSVPN_PROFILE"\n' > "$S/bin/firefox"
cp "$S/bin/firefox" "$S/bin/slack"; chmod 755 "$S/bin/firefox" "$S/bin/slack"
chmod 755 "$S" "$S/bin" "$S/outside"
expect "no firefox running: no warning" "started inside alpha" as_user nsvpn exec alpha -- "$S/bin/firefox"
"$S/outside/firefox" 60 & root_ff=$!
expect "a firefox of another user (root) outside: no warning" "started inside alpha" as_user nsvpn exec alpha -- "$S/bin/firefox"
SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody nsvpn exec alpha -- "$S/outside/firefox" 60 & inside_ff=$!
for _ in $(seq 100); do [ "$(net_of "$inside_ff" 2> /dev/null)" = "$alpha_net" ] && break; sleep 0.02; done
expect "the user's firefox inside the same profile: no warning" "started inside alpha" as_user nsvpn exec alpha -- "$S/bin/firefox"
"${NOBODY[@]}" "$S/outside/firefox" 60 & ff=$!
for _ in $(seq 100); do [ "$(cat /proc/$ff/comm 2> /dev/null)" = firefox ] && break; sleep 0.02; done
as_user nsvpn exec alpha -- "$S/bin/firefox" https://intranet.internal > "$S/ff.out" 2> "$S/ff.err"
expect "the user's firefox outside: the command still runs inside" "started inside alpha" cat "$S/ff.out"
expect "... after a warning that names the instance, the host's network and the flags for a separate instance" \
  "nsvpn: warning: firefox already runs for nobody outside profile alpha (pid $ff): firefox may hand this request to that instance and exit, and the instance would use the host's network, not the profile's. To start a separate instance inside the profile: nsvpn exec alpha -- firefox --new-instance --profile DIR (DIR: a directory of its own for this profile)" \
  cat "$S/ff.err"
expect "with --new-instance --profile DIR: no warning" "" \
  bash -c "as_user nsvpn exec alpha -- $S/bin/firefox --new-instance --profile $S/ff-profile 2>&1 >/dev/null"
"${NOBODY[@]}" "$S/outside/slack" 60 & slack=$!
for _ in $(seq 100); do [ "$(cat /proc/$slack/comm 2> /dev/null)" = slack ] && break; sleep 0.02; done
expect "slack is not built in: no warning" "" bash -c "as_user nsvpn exec alpha -- $S/bin/slack 2>&1 >/dev/null"
mkdir -p /etc/nsvpn
printf '# programs that keep one instance per user\nslack   --user-data-dir=DIR\n' > /etc/nsvpn/single-instance
expect "listed in /etc/nsvpn/single-instance, it is warned of, with the flags given there" \
  "nsvpn: warning: slack already runs for nobody outside profile alpha (pid $slack): slack may hand this request to that instance and exit, and the instance would use the host's network, not the profile's. To start a separate instance inside the profile: nsvpn exec alpha -- slack --user-data-dir=DIR (DIR: a directory of its own for this profile)" \
  bash -c "as_user nsvpn exec alpha -- $S/bin/slack 2>&1 >/dev/null"
kill "$root_ff" "$inside_ff" "$ff" "$slack"; wait "$root_ff" "$inside_ff" "$ff" "$slack" 2> /dev/null
rm -f /etc/nsvpn/single-instance

umount /tmp
rm -rf "$S" "$rt"
expect "nothing of the session tests is left: no process in alpha, no Xvfb, bus or stand-in, no mount" "" \
  bash -c "ip netns pids nsvpn-alpha; pgrep -af 'Xvfb|dbus-daemon --session|socat UNIX-LISTEN|nsvpn-session' | grep -v pgrep; grep nsvpn-session /proc/self/mountinfo"
