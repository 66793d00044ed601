#!/usr/bin/env bash
# Kernel WireGuard and the kernel path of IPsec (XFRM interfaces), proven in
# a VM. Boots the distribution's kernel (one that
# Debian's linux-image package installed in /boot, with its wireguard.ko)
# under qemu with software emulation and no network device, from an
# initramfs built here out of the freshly built nsvpn, busybox and the tools
# the scenario needs; loads the WireGuard, XFRM and ESP modules and runs
# vm-scenario.sh (kernel WireGuard on both ends; an IPsec profile on the
# kernel path against a strongSwan gateway). Prints the VM's console, and exits 0 only
# when the scenario passed.
#
# Usage: sudo integration/vm.sh [NSVPN_BINARY]     (default target/release/nsvpn)
# Environment:
#   NSVPN_VM_KERNEL   kernel version to boot (default: the newest in /boot
#                     whose modules include wireguard)
#   NSVPN_VM_LOG      where the console log goes (default target/vm/console.log)
#   NSVPN_VM_TIMEOUT  seconds before the VM is stopped as hung (default 900)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "vm: run as root (sudo $0): /boot's kernels are readable by root only" >&2; exit 1; }
nsvpn=$(realpath "${1:-$root/target/release/nsvpn}")
[ -x "$nsvpn" ] || { echo "vm: no nsvpn binary at $nsvpn (cargo build --release first)" >&2; exit 1; }
log=${NSVPN_VM_LOG:-$root/target/vm/console.log}
timeout=${NSVPN_VM_TIMEOUT:-900}

need() { command -v "$1" > /dev/null || { echo "vm: $1 is missing (Debian package: $2)" >&2; exit 1; }; }
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need modprobe kmod
need wg wireguard-tools
need dnsmasq dnsmasq-base
need pgrep procps
need tcpdump tcpdump
need swanctl strongswan-swanctl
need openssl openssl
charon=/usr/lib/ipsec/charon
[ -x "$charon" ] || { echo "vm: $charon is missing (Debian packages: strongswan-charon libcharon-extra-plugins)" >&2; exit 1; }
busybox=/bin/busybox
[ -x "$busybox" ] && ! ldd "$busybox" > /dev/null 2>&1 \
  || { echo "vm: $busybox is not the static busybox (Debian package: busybox-static)" >&2; exit 1; }

# The kernel: the newest in /boot whose modules ship wireguard.
kver=${NSVPN_VM_KERNEL:-}
if [ -z "$kver" ]; then
  for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -rV); do
    if modprobe --show-depends -S "$k" wireguard > /dev/null 2>&1; then kver=$k; break; fi
  done
fi
[ -n "$kver" ] && [ -r "/boot/vmlinuz-$kver" ] || {
  echo "vm: no kernel in /boot ships the wireguard module; install one (apt-get install linux-image-amd64)" >&2; exit 1; }

work=$(mktemp -d /tmp/nsvpn-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
fs=$work/root
mkdir -p "$fs"/{bin,sbin,usr/bin,usr/sbin,etc/netns,proc,sys,dev,run,tmp,root,lib/modules,nsvpn/integration,var}
# charon's pid file is /var/run/charon.pid.
ln -s /run "$fs/var/run"

# add_binary PATH [DEST]: copies an executable (to DEST in the VM, default the
# same path) and the shared libraries it loads.
add_binary() {
  local b; b=$(realpath "$1")
  install -D -m 755 "$b" "$fs${2:-$1}"
  ldd "$b" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$fs$lib" ] || install -D -m 755 "$(realpath "$lib")" "$fs$lib"
  done
}
for b in /bin/bash /usr/bin/ip /usr/bin/wg /usr/sbin/dnsmasq /usr/bin/getent \
  /usr/bin/setpriv /usr/bin/ping /usr/bin/pgrep /usr/bin/tcpdump; do
  add_binary "$b"
done
add_binary "$nsvpn" /usr/local/bin/nsvpn
# strongSwan: charon (nsvpn's and the lab gateway's), the plugins either
# loads, swanctl (the gateway's loader) and openssl (the lab's certificates).
add_binary "$charon"
for p in random nonce kdf aes sha1 sha2 md5 hmac gmp pem pkcs1 pkcs8 x509 pubkey kernel-libipsec \
  kernel-netlink socket-default vici resolve attr eap-identity eap-md5 eap-mschapv2; do
  add_binary "$(dirname "$charon")/plugins/libstrongswan-$p.so"
done
add_binary /usr/sbin/swanctl
add_binary /usr/bin/openssl
# glibc's pthread_cancel (charon's and swanctl's threads) loads libgcc_s at
# run time, which ldd does not list; nsvpn links its unwinder statically
# and no longer brings it along.
libgcc=$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64/ {print $NF; exit}')
install -D -m 644 "$(realpath "$libgcc")" "$fs$libgcc"
install -D -m 644 "$(realpath /usr/lib/ssl/openssl.cnf)" "$fs/usr/lib/ssl/openssl.cnf"
# swanctl refuses to start without /etc/strongswan.conf (empty: its defaults).
: > "$fs/etc/strongswan.conf"
# busybox for everything else; the real tools above win. /bin/sh is bash:
# busybox's ash would run its own applets (its `ip`) before the real tools.
ln -s bash "$fs/bin/sh"
cp "$busybox" "$fs/bin/busybox"
for applet in $("$busybox" --list); do
  for d in bin sbin usr/bin usr/sbin usr/local/bin; do [ -e "$fs/$d/$applet" ] && continue 2; done
  ln -s busybox "$fs/bin/$applet"
done
cp "$here"/{vm-scenario.sh,lab.sh,checks.sh} "$fs/nsvpn/integration/"

# The modules, in dependency order (veth and overlay too: Debian builds them
# as modules; exec lays an overlay on /etc). IPsec: XFRM interfaces, charon's
# XFRM netlink (xfrm_user), ESP and the AEAD templates the kernel builds ESP
# transforms from; tun for the lab gateway's kernel-libipsec.
for m in wireguard veth overlay xfrm_interface xfrm_user esp4 authenc authencesn echainiv seqiv \
  gcm ctr ghash-generic sha512_generic drbg tun; do modprobe --show-depends -S "$kver" "$m"; done \
  | awk '$1 == "insmod" && !seen[$2]++ {print $2}' > "$work/modules"
while read -r m; do
  name=$(basename "$m"); name=${name%%.ko*}
  case $m in
    *.ko.xz) xz -dc "$m" ;;
    *.ko.zst) zstd -qdc "$m" ;;
    *.ko.gz) gzip -dc "$m" ;;
    *) cat "$m" ;;
  esac > "$fs/lib/modules/$name.ko"
  echo "$name" >> "$fs/lib/modules/order"
done < "$work/modules"

cat > "$fs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
printf 'root:x:0:\ndip:x:30:\nnogroup:x:65534:\n' > "$fs/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$fs/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$fs/etc/hosts"
# The VM's own resolver: an address nothing answers at.
printf 'nameserver 192.0.2.53\n' > "$fs/etc/resolv.conf"

cat > "$fs/init" <<'EOF'
#!/bin/sh
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs tmp /tmp
mkdir -p /run/lock /dev/pts
ln -sf /proc/self/fd /dev/fd
ip link set lo up
echo "nsvpn-vm: kernel $(uname -r), $(nproc) CPUs"
rc=1
loaded=yes
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" || { echo "nsvpn-vm: insmod $m failed"; loaded=no; break; }
done
if [ $loaded = yes ]; then
  /bin/bash /nsvpn/integration/vm-scenario.sh
  rc=$?
fi
echo "nsvpn-vm: scenario exit status $rc"
poweroff -f
EOF
chmod 755 "$fs/init"
(cd "$fs" && find . | cpio -o -H newc --quiet) | gzip -1 > "$work/initrd"

mkdir -p "$(dirname "$log")"
echo "vm: booting $kver under qemu (TCG), initramfs $(du -h "$work/initrd" | cut -f1); console log in $log"
start=$(date +%s)
set +e
timeout "$timeout" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1024 \
  -display none -monitor none -serial stdio -nic none -no-reboot \
  -kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd" \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init" < /dev/null 2>&1 | tr -d '\r' | tee "$log"
qemu_rc=${PIPESTATUS[0]}
set -e
echo "vm: the VM ran for $(( $(date +%s) - start )) s"
[ "$qemu_rc" = 124 ] && { echo "vm: FAIL: the VM did not finish within $timeout s" >&2; exit 1; }
grep -q '^nsvpn-vm: scenario exit status 0$' "$log" || { echo "vm: FAIL: the VM scenario failed (log: $log)" >&2; exit 1; }
echo "vm: the VM scenario (kernel WireGuard, IPsec kernel path) passed"
