#!/bin/bash
# The scenario of the offline Vagrant path (integration/vagrant.sh), run as
# root inside the VM by the Vagrantfile's provisioner, after the host's
# nsvpn .deb was installed there with apt. The VM is a booted Debian 12
# (systemd, Debian's kernel with its WireGuard module, no internet).
# The lab's pieces (lab.sh): a WireGuard gateway on the kernel's module
# (alpha) and an OpenVPN gateway (charlie), each fronting 10.20.0.0/16 with a
# web page at 10.20.1.5 named db.internal by its DNS. Both profiles up at
# once from /etc/nsvpn/profiles, the package's directory; exec as the
# `vagrant` user through sudo; nsvpn@.service under the VM's systemd; down,
# and nothing left. Prints one line per check and "N passed, M failed".
set -uo pipefail
# The provisioner runs this through sudo: root's own run (up, down, systemctl
# as an administrator would); the user's side goes through sudo below.
unset SUDO_UID SUDO_GID SUDO_USER SUDO_COMMAND
here=$(cd "$(dirname "$0")" && pwd)
export LAB_WG=kernel
# Not in /run: Debian's initramfs mounts it noexec, and the OpenVPN
# gateway runs a password script from the lab's directory.
export LAB_DIR=/var/lib/nsvpn-lab
# shellcheck source=lab.sh
source "$here/lab.sh"
# shellcheck source=checks.sh
source "$here/checks.sh"

# user_exec PROFILE CMD...: nsvpn exec as the VM's user, the way a user runs it.
user_exec() { local p=$1; shift; runuser -u vagrant -- sudo -n nsvpn exec "$p" -- "$@"; }
# side PROFILE: the page of db.internal (by name, through glibc: bash's
# /dev/tcp), fetched from inside as the user.
side() {
  user_exec "$1" timeout 10 bash -c \
    'exec 3<>/dev/tcp/db.internal/80 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && tail -n 1 <&3'
}
export -f user_exec
json() { nsvpn status "$1" --json | tr -d ' \n' | grep -o "\"$2\":[^,}]*" | head -n 1 | cut -d: -f2- | tr -d '"'; }

trap 'lab_down; rm -rf "$LAB_DIR"' EXIT
echo "# the VM: $(uname -r), $(nproc) CPUs, PID 1 $(cat /proc/1/comm)"
check "PID 1 is systemd" test "$(cat /proc/1/comm)" = systemd
expect "nsvpn is installed from the package" "install ok installed" dpkg-query -W -f '${Status}' nsvpn
expect "nsvpn is the package's /usr/sbin/nsvpn" /usr/sbin/nsvpn command -v nsvpn
check "the kernel ships the WireGuard module" modinfo -F filename wireguard
status_is "wireguard-go is not installed: no userspace fallback" 1 bash -c 'command -v wireguard-go'

echo "# setting up the lab: WireGuard (kernel) at alpha, OpenVPN at charlie, both 10.20.0.0/16"
setup() {
  set -e
  mkdir -p "$LAB_DIR"
  lab_network alpha 0; lab_httpd alpha; lab_wireguard alpha 0
  lab_network charlie 2; lab_httpd charlie; lab_openvpn charlie 2
  # The profiles, as an administrator installs them: the package's directory.
  install -m 600 "$LAB_DIR"/profiles/{alpha.conf,charlie.ovpn,charlie.auth} /etc/nsvpn/profiles/
  printf '[vpn]\nkind = "wireguard"\nconfig = "alpha.conf"\n' > /etc/nsvpn/profiles/alpha.toml
  printf '[vpn]\nkind = "openvpn"\nconfig = "charlie.ovpn"\nauth_file = "charlie.auth"\n' > /etc/nsvpn/profiles/charlie.toml
}
if ! (setup) > /run/lab-setup.log 2>&1; then
  echo "FAIL - the lab did not start:"; tail -n 30 /run/lab-setup.log; echo "0 passed, 1 failed"; exit 1
fi
unset NSVPN_PROFILES
listening() { ip netns exec "lab-gw-$1" ss -Hlun "sport = :$2" | grep -q .; }
for _ in $(seq 100); do listening charlie 1194 && break; sleep 0.1; done
if listening charlie 1194; then ok "the OpenVPN gateway listens on $(lab_gw_ip 2):1194/udp"; else
  fail "the OpenVPN gateway listens on $(lab_gw_ip 2):1194/udp"; tail -n 20 "$LAB_DIR/charlie/server.log" | sed 's/^/       server.log: /'; fi
resolv_before=$(sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf)
routes_before=$(host_routes)

echo "# two profiles on one subnet, up at once: WireGuard on the kernel, OpenVPN"
check "up alpha (WireGuard)" nsvpn up alpha
check "up charlie (OpenVPN)" nsvpn up charlie
expect "list shows both up" "alpha up charlie up" bash -c "nsvpn list | awk 'NR>1{printf \"%s%s %s\", sep, \$1, \$3; sep=\" \"}'"
expect "alpha runs on the kernel's WireGuard" kernel json alpha implementation
check "the wireguard module is loaded" grep -q '^wireguard ' /proc/modules
expect "the tunnel inside alpha is a kernel wireguard link" wireguard sh -c "ip -n nsvpn-alpha -d link show nsvt-alpha | grep -ow wireguard | head -n 1"
check "alpha has completed a handshake" sh -c "[ \"\$(ip netns exec nsvpn-alpha wg show nsvt-alpha latest-handshakes | cut -f2)\" -gt 0 ]"
check "charlie's tunnel is a tun device inside its namespace" sh -c "ip -n nsvpn-charlie -d link show nsvt-charlie | grep -qw tun"

echo "# exec as the user (sudo): each profile reaches its own side of 10.20.1.5, by name"
expect "alpha's exec reaches alpha's server" alpha side alpha
expect "charlie's exec reaches charlie's server" charlie side charlie
expect "the command runs as the user who ran sudo" "vagrant $(id -u vagrant) $(id -g vagrant)" user_exec alpha sh -c 'echo $(id -un) $(id -u) $(id -g)'
expect "with no capabilities; no_new_privs" "CapInh:0000000000000000 CapPrm:0000000000000000 CapEff:0000000000000000 CapAmb:0000000000000000 NoNewPrivs:1" \
  user_exec charlie sh -c "grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs)' /proc/self/status | tr -d '\t' | tr '\n' ' ' | sed 's/ \$//'"
expect "db.internal inside alpha is alpha's DNS's answer" "10.20.1.5 db.internal" bash -c "user_exec alpha getent hosts db.internal | tr -s ' '"
expect "only charlie's DNS knows only-charlie.internal" "10.20.9.2" bash -c "user_exec charlie getent hosts only-charlie.internal | cut -d' ' -f1"
status_is "alpha cannot resolve charlie's names" 2 user_exec alpha getent hosts only-charlie.internal
expect "the host's routes are unchanged (but for the veth links)" "$routes_before" host_routes
expect "the host's resolv.conf, hosts, nsswitch.conf are unchanged" "$resolv_before" sha256sum /etc/resolv.conf /etc/hosts /etc/nsswitch.conf
status_is "the host cannot resolve db.internal" 2 getent hosts db.internal

echo "# nsvpn@.service under the VM's systemd"
check "down alpha (the service brings it up again)" nsvpn down alpha
check "systemctl start nsvpn@alpha" systemctl start nsvpn@alpha
expect "the unit is active" active systemctl is-active nsvpn@alpha
expect "the service's alpha reaches alpha's server, for the user" alpha side alpha
check "systemctl stop nsvpn@alpha" systemctl stop nsvpn@alpha
expect "the unit is inactive" inactive systemctl is-active nsvpn@alpha
expect "nothing of alpha is left" "" leftovers_of alpha
expect "charlie still reaches its server" charlie side charlie

echo "# down removes every trace"
check "down charlie" nsvpn down charlie
expect "no namespace, link, process, file or mount is left" "" leftovers
expect "no WireGuard link exists outside the lab's gateway" "" sh -c "ip -d link show type wireguard; for n in \$(ip netns list | cut -d' ' -f1 | grep -v '^lab-gw-'); do ip -n \$n -d link show type wireguard; done"
rm -f /etc/nsvpn/profiles/{alpha,charlie}.*

summary
