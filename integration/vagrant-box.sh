#!/usr/bin/env bash
# Builds the Vagrant box that integration/vagrant.sh boots: Debian 12
# (bookworm) debootstrapped from this machine's apt mirror, for the libvirt
# provider. No download from Vagrant Cloud. In the box:
#  - Debian's kernel (linux-image-amd64, which ships wireguard.ko) and its
#    initramfs, booted directly by libvirt (the box's Vagrantfile sets
#    lv.kernel, lv.initrd, lv.cmd_line): the disk is one ext4 file system,
#    no partition table, no bootloader;
#  - systemd as PID 1 (systemd-networkd asks libvirt's DHCP for the address
#    vagrant connects to), openssh-server, sudo, and a `vagrant` user whose
#    authorized key is vagrant's insecure public key (vagrant swaps it for a
#    key of its own at the first `vagrant up`); each VM makes its own SSH host
#    keys at its first boot;
#  - the Debian packages the offline scenario needs, since the VM has no
#    internet: wireguard-tools, openvpn, openssl, dnsmasq-base, busybox,
#    iproute2, iputils-ping, procps, rsync (the synced folder). No
#    wireguard-go: WireGuard runs on the kernel's module.
# Output: a .box file (a tar of metadata.json, box.img (qcow2), vmlinuz,
# initrd.img and a Vagrantfile). Its name carries a hash of this script, so a
# changed recipe builds a new box and an unchanged one is reused.
#
# Usage: sudo integration/vagrant-box.sh [OUTPUT_DIR]    (default target/vagrant)
#   prints the path of the box on its last line.
# Environment:
#   NSVPN_BOX_MIRROR   the Debian mirror (default: the one apt uses here for
#                      bookworm, from /etc/apt/sources.list{,.d/*})
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
say() { echo "vagrant-box: $*" >&2; }
die() { echo "vagrant-box: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (sudo $0): debootstrap and the chroot need it"

# The recipe's version: this script. Same script, same box.
recipe=$(sha256sum "$0" | cut -c1-12)
out=$(realpath -m "${1:-$root/target/vagrant}")
flavor=${NSVPN_BOX_FLAVOR:-scenario}
case $flavor in
  scenario) box=$out/nsvpn-bookworm-$recipe.box ;;
  suite) box=$out/nsvpn-bookworm-suite-$recipe.box ;;
  *) die "NSVPN_BOX_FLAVOR is scenario or suite, not $flavor" ;;
esac
if [ -s "$box" ]; then
  say "cached: $box ($(du -h "$box" | cut -f1))"
  echo "$box"; exit 0
fi

if [ "${2:-}" != --in-mount-namespace ]; then
  need() { command -v "$1" > /dev/null || die "$1 is missing (Debian package: $2)"; }
  need debootstrap debootstrap
  need qemu-img qemu-utils
  need mkfs.ext4 e2fsprogs
  keys=/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub
  # shellcheck disable=SC2086
  ls $keys > /dev/null 2>&1 || keys=/usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant.pub
  # shellcheck disable=SC2086
  ls $keys > /dev/null 2>&1 || die "vagrant's insecure public key is missing (Debian package: vagrant)"
  mkdir -p "$out"
  # Mounts of the chroot (proc, dev, sys) live in a mount namespace of their
  # own: they go with the script, also when it fails.
  exec unshare --mount --propagation private --fork "$0" "$out" --in-mount-namespace
fi
key=
for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant.pub; do
  [ -r "$k" ] && { key=$k; break; }
done

# The mirror apt uses here for SUITE (deb822 .sources or one-line .list).
apt_uri() {
  local suite=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    case $f in
      *.sources)
        awk -v s="$suite" 'BEGIN{RS=""} {u=""; ok=0; n=split($0, l, "\n")
          for (i=1;i<=n;i++) { if (l[i] ~ /^URIs:/) { split(l[i], w, " "); u=w[2] }
            if (l[i] ~ /^Suites:/) { m=split(l[i], w, " "); for (j=2;j<=m;j++) if (w[j]==s) ok=1 } }
          if (ok && u != "") { print u; exit } }' "$f" ;;
      *) awk -v s="$suite" '$1 == "deb" { for (i=2;i<=NF;i++) if ($i !~ /^\[/ ) { if ($(i+1)==s) { print $i; exit } break } }' "$f" ;;
    esac
  done | head -n 1
}
mirror=${NSVPN_BOX_MIRROR:-$(apt_uri bookworm)}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(apt_uri bookworm-security)

t0=$(date +%s)
work=$(mktemp -d "$out/box-build.XXXXXX")
R=$work/root
cleanup() {
  umount -R "$R/proc" "$R/sys" "$R/dev" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "debootstrap bookworm from $mirror (log: $out/debootstrap.log)"
debootstrap --variant=minbase --include=ca-certificates bookworm "$R" "$mirror" > "$out/debootstrap.log" 2>&1 \
  || { tail -n 30 "$out/debootstrap.log" >&2; die "debootstrap failed"; }
t_debootstrap=$(($(date +%s) - t0))

mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --rbind /dev "$R/dev"
in_root() {
  chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}
{
  echo "deb $mirror bookworm main"
  echo "deb $mirror bookworm-updates main"
  [ -z "$security" ] || echo "deb $security bookworm-security main"
} > "$R/etc/apt/sources.list"
cp /etc/resolv.conf "$R/etc/resolv.conf"
# Nothing starts in the chroot.
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
pkgs=(linux-image-amd64 initramfs-tools systemd systemd-sysv udev dbus
  openssh-server sudo netbase iproute2 iputils-ping procps kmod less rsync
  wireguard-tools openvpn openssl dnsmasq-base busybox)
# The whole integration suite needs what integration/deps.sh installs for it
# (not the tools of vm.sh, package.sh, bench.sh and vagrant.sh) and nscd, unpacked where the
# suite looks for it (it runs nscd in its sandbox only).
[ "$flavor" = suite ] && pkgs+=(wireguard-go openconnect ocserv postgresql util-linux libcap2-bin
  python3 tcpdump zsh slirp4netns socat curl nftables bind9-dnsutils jq
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libcharon-extauth-plugins
  libstrongswan-standard-plugins)
say "installing ${pkgs[*]} (log: $out/apt.log)"
{ in_root apt-get update -q && in_root apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } > "$out/apt.log" 2>&1 \
  || { tail -n 30 "$out/apt.log" >&2; die "apt-get install in the box failed"; }
if [ "$flavor" = suite ]; then
  in_root sh -c 'cd /tmp && apt-get download nscd && mkdir -p /opt/nsvpn-suite/nscd && dpkg-deb -x nscd_*.deb /opt/nsvpn-suite/nscd && rm nscd_*.deb' >> "$out/apt.log" 2>&1 \
    || die "nscd could not be unpacked in the box"
  # The lab's PostgreSQL clusters are the suite's own.
  in_root sh -c 'pg_dropcluster --stop "$(ls /etc/postgresql)" main' >> "$out/apt.log" 2>&1 || true
fi
t_packages=$(($(date +%s) - t0 - t_debootstrap))

say "configuring: vagrant user, sshd, systemd-networkd, fstab"
echo nsvpn-box > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 nsvpn-box\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
echo 'LABEL=nsvpn-root / ext4 defaults,noatime 0 1' > "$R/etc/fstab"
# No resolver: the VM reaches nothing beyond libvirt's network.
: > "$R/etc/resolv.conf"
cat > "$R/etc/systemd/network/10-dhcp.network" <<'EOF'
[Match]
Name=eth* en*
[Network]
DHCP=ipv4
EOF
in_root systemctl enable systemd-networkd > /dev/null 2>&1
in_root useradd -m -s /bin/bash -G sudo vagrant
echo vagrant:vagrant | in_root chpasswd
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$R/etc/sudoers.d/vagrant"
chmod 440 "$R/etc/sudoers.d/vagrant"
install -d -m 700 "$R/home/vagrant/.ssh"
install -m 600 "$key" "$R/home/vagrant/.ssh/authorized_keys"
in_root chown -R vagrant:vagrant /home/vagrant/.ssh
printf 'UseDNS no\n' > "$R/etc/ssh/sshd_config.d/vagrant.conf"
# Every VM makes its own host keys at its first boot.
rm -f "$R"/etc/ssh/ssh_host_*
mkdir -p "$R/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  > "$R/etc/systemd/system/ssh.service.d/host-keys.conf"
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id" "$R/usr/sbin/policy-rc.d"
in_root apt-get clean
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/log/*.log "$R"/var/cache/debconf/*-old "$R"/tmp/*
kver=$(basename "$(ls -d "$R"/lib/modules/*)")
[ -f "$R/lib/modules/$kver/kernel/drivers/net/wireguard/wireguard.ko" ] \
  || [ -f "$R/lib/modules/$kver/kernel/drivers/net/wireguard/wireguard.ko.xz" ] \
  || die "the box's kernel $kver has no wireguard.ko"
umount -R "$R/proc" "$R/sys" "$R/dev"

say "kernel $kver; making the disk (ext4 from the tree, qcow2)"
b=$work/box
mkdir "$b"
cp "$R/boot/vmlinuz-$kver" "$b/vmlinuz"
cp "$R/boot/initrd.img-$kver" "$b/initrd.img"
size_gb=4
truncate -s "${size_gb}G" "$work/disk.raw"
mkfs.ext4 -q -F -L nsvpn-root -d "$R" "$work/disk.raw"
rm -rf "$R"
qemu-img convert -c -O qcow2 "$work/disk.raw" "$b/box.img"
rm "$work/disk.raw"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$size_gb" > "$b/metadata.json"
cat > "$b/Vagrantfile" <<'EOF'
# The box of nsvpn's integration tests (integration/vagrant-box.sh): Debian 12
# booted directly from the kernel and initramfs that come with it.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "root=LABEL=nsvpn-root rw console=ttyS0 net.ifnames=0"
  end
end
EOF
tar -C "$b" -cf "$box.part" metadata.json Vagrantfile box.img vmlinuz initrd.img
mv "$box.part" "$box"
# Boxes of older recipes go.
old=nsvpn-bookworm-; [ "$flavor" = suite ] && old=nsvpn-bookworm-suite-
find "$out" -maxdepth 1 -name "$old[0-9a-f][0-9a-f]*.box" ! -name "$(basename "$box")" -delete
say "built $box: $(du -h "$box" | cut -f1) ($(stat -c %s "$box") bytes; debootstrap ${t_debootstrap} s, packages ${t_packages} s, all $(($(date +%s) - t0)) s)"
echo "$box"
