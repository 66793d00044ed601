# DNS that cannot escape, sourced by suite.sh while alpha is up. Each leak
# path is shown first to work with `ip netns exec` (which binds the same
# files but does nothing more), so a check that passes means nsvpn closed it.
# The host side (nscd, a resolved socket, the rename over /etc/resolv.conf)
# happens in the sandbox: its /run is a tmpfs and its /etc an overlay.

echo "# DNS: nscd on the host answers from the host's network; not inside"
nscd_bin="$here/../target/nscd/usr/sbin/nscd"
cp /etc/hosts /run/hosts.saved
echo "10.77.0.1 host-only.test" >> /etc/hosts
printf 'enable-cache hosts yes\npersistent hosts no\nshared hosts yes\nenable-cache passwd no\nenable-cache group no\nenable-cache netgroup no\nenable-cache services no\n' > /run/nscd.conf
mkdir -p /run/nscd
"$nscd_bin" -F -f /run/nscd.conf > /run/nscd.log 2>&1 &
nscd_pid=$!
for _ in $(seq 100); do [ -S /run/nscd/socket ] && break; sleep 0.05; done
check "nscd runs on the host (sandbox) with its socket" test -S /run/nscd/socket
expect "control: under ip netns exec, glibc asks the host's nscd and gets the host's answer" "10.77.0.1" \
  bash -c "ip netns exec nsvpn-alpha getent hosts host-only.test | awk '{print \$1}'"
status_is "inside nsvpn exec, the host-only name is not found" 2 as_user nsvpn exec alpha -- getent hosts host-only.test
expect "... because the nscd directory inside is empty" "" as_user nsvpn exec alpha -- ls -A /run/nscd
expect "... and alpha's names still resolve through alpha's DNS" "10.20.1.5 db.internal" bash -c "SUDO_UID=65534 SUDO_GID=65534 nsvpn exec alpha -- getent hosts db.internal | tr -s ' '"
kill "$nscd_pid"; wait "$nscd_pid" 2>/dev/null
cp /run/hosts.saved /etc/hosts; rm -rf /run/nscd /run/nscd.conf /run/hosts.saved

echo "# DNS: systemd-resolved's and avahi's sockets are hidden"
mkdir -p /run/systemd/resolve /run/avahi-daemon
python3 -c '
import os, socket, sys, time
ss = []
for p in ("/run/systemd/resolve/io.systemd.Resolve", "/run/avahi-daemon/socket"):
    s = socket.socket(socket.AF_UNIX); s.bind(p); os.chmod(p, 0o666); s.listen(); ss.append(s)
time.sleep(60)' &
fake_pid=$!
for _ in $(seq 100); do [ -S /run/avahi-daemon/socket ] && break; sleep 0.05; done
printf 'import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint("connected")\n' > /run/connect.py
expect "control: under ip netns exec, resolved's socket is reachable" "connected" ip netns exec nsvpn-alpha python3 /run/connect.py /run/systemd/resolve/io.systemd.Resolve
status_is "inside nsvpn exec, resolved's socket is not there" 1 as_user nsvpn exec alpha -- python3 /run/connect.py /run/systemd/resolve/io.systemd.Resolve
grep -q "FileNotFoundError" /tmp/out && ok "... (no such file)" || { fail "... (no such file)"; cat /tmp/out; }
status_is "inside nsvpn exec, avahi's socket is not there" 1 as_user nsvpn exec alpha -- python3 /run/connect.py /run/avahi-daemon/socket
kill "$fake_pid"; wait "$fake_pid" 2>/dev/null
rm -rf /run/systemd /run/avahi-daemon /run/connect.py

echo "# DNS: a long-lived shell keeps the profile's DNS when the host renames a new resolv.conf over its own"
cp -a /etc/resolv.conf /run/resolv.conf.saved
ask='grep ^nameserver /etc/resolv.conf; getent hosts db.internal | tr -s " "'
# A shell inside, fed line by line: one round before the rename, one after.
long_lived() {  # OUT COMMAND...
  local out=$1; shift
  rm -f /run/sh.in; mkfifo /run/sh.in
  "$@" < /run/sh.in > "$out" 2>&1 &
  local pid=$!
  exec 7> /run/sh.in
  echo "$ask" >&7; sleep 0.5
  printf 'nameserver 192.0.2.99\n' > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf
  echo "echo renamed; $ask" >&7
  exec 7>&-
  wait "$pid"
  rm -f /run/sh.in
  cp -a /run/resolv.conf.saved /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf
}
long_lived /run/control.out ip netns exec nsvpn-alpha bash
expect "control: a shell under ip netns exec loses it (the kernel drops the bind)" "nameserver 192.0.2.99" \
  bash -c "sed -n '/^renamed/,\$p' /run/control.out | grep ^nameserver"
long_lived /run/shell.out nsvpn shell alpha
expect "nsvpn shell: before and after the rename, alpha's nameserver and alpha's answer" \
  "nameserver 10.20.0.53
10.20.1.5 db.internal
renamed
nameserver 10.20.0.53
10.20.1.5 db.internal" cat /run/shell.out
rm -f /run/control.out /run/shell.out /run/resolv.conf.saved
expect "/etc inside is read-only" "Read-only file system" \
  bash -c "nsvpn exec alpha -- touch /etc/nsvpn-test 2>&1 | grep -o 'Read-only file system'"
expect "mounts below /etc (the sandbox's tmpfs on /etc/netns) are carried into the overlay" "tmpfs $(ls /etc/netns | xargs)" \
  nsvpn exec alpha -- sh -c 'echo $(stat -f -c %T /etc/netns) $(ls /etc/netns)'
