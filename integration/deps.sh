#!/usr/bin/env bash
# Installs the Debian packages the lab and the tests need, when missing.
set -euo pipefail
# slirp4netns, socat, curl, nftables and dig (bind9-dnsutils): the lab's
# internet and the split-tunnel probe (split-probe.sh). strongSwan's charon
# with kernel-libipsec (libcharon-extra-plugins) and swanctl: IPsec profiles
# and the lab's IKEv2 gateway; its eap-mschapv2 plugin
# (libcharon-extauth-plugins) and openssl plugin (ECDSA, and MD4/DES for
# MSCHAPv2: libstrongswan-standard-plugins). podman and runc (rootful, cgroupfs; crun
# refuses the machine's hybrid cgroups), Xvfb with an X client (xmessage),
# xauth, xwd and netpbm (a screenshot), a session bus (dbus-daemon,
# dbus-send): suite-session.sh. vagrant-libvirt, libvirt's daemon with its
# qemu driver (not libvirt-daemon-system: its scripts would start a libvirtd
# and a default network on this machine; vagrant.sh runs its own in
# namespaces), iptables (libvirt's NAT rules), debootstrap, qemu-utils and
# e2fsprogs (the box), rsync and ssh (vagrant's synced folder): `vagrant up`
# for real (integration/vagrant.sh). iperf3: the benchmark.
pkgs=(wireguard-go wireguard-tools openvpn openconnect ocserv openssl dnsmasq-base postgresql iproute2 iputils-ping procps util-linux libcap2-bin hyperfine iperf3 python3 tcpdump zsh
  slirp4netns socat curl nftables bind9-dnsutils jq
  qemu-system-x86 busybox-static cpio kmod xz-utils vagrant
  vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients iptables
  debootstrap qemu-utils e2fsprogs rsync openssh-client
  systemd systemd-container bash-completion man-db
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libcharon-extauth-plugins libstrongswan-standard-plugins
  podman runc xvfb x11-utils x11-apps xauth netpbm dbus-daemon dbus-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Debian package is built with cargo-deb (integration/package.sh).
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  echo "deps: installing cargo-deb $cargo_deb_version"
  cargo install cargo-deb --locked --version "$cargo_deb_version"
fi
# The VM runner boots a kernel from /boot that ships wireguard.ko.
wireguard_kernel() {
  local k
  for k in /boot/vmlinuz-*; do
    modprobe --show-depends -S "${k#/boot/vmlinuz-}" wireguard > /dev/null 2>&1 && return 0
  done
  return 1
}
if ! wireguard_kernel; then
  echo "deps: no kernel in /boot ships wireguard.ko; installing Debian's kernel for the VM runner"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-image-amd64
fi
# nscd is unpacked, not installed: the suite runs it inside its sandbox only,
# and installing the package would start it on this machine.
nscd_dir=$(cd "$(dirname "$0")/.." && pwd)/target/nscd
if [ ! -x "$nscd_dir/usr/sbin/nscd" ]; then
  dl=$(mktemp -d); chmod 755 "$dl"
  (cd "$dl" && { apt-get download nscd 2>/dev/null || { apt-get update -q && apt-get download nscd; }; } \
    && mkdir -p "$nscd_dir" && dpkg-deb -x nscd_*.deb "$nscd_dir")
  rm -rf "$dl"
fi
