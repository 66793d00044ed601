#!/usr/bin/env bash
# `vagrant up` for real, offline, on this machine: the Vagrantfile's offline
# path with the libvirt provider (vagrant-libvirt), software emulation
# (libvirt domain type qemu: KVM guests do not start on these machines).
#  1. the box: integration/vagrant-box.sh (Debian 12 debootstrapped here,
#     cached under target/vagrant by the hash of its recipe);
#  2. the package: the host's nsvpn .deb (cargo deb --locked, or the one given);
#  3. libvirtd, vagrant and the VM run in a network, mount and PID namespace
#     of this script's own: libvirt's NAT network (bridge, dnsmasq, iptables
#     rules, ip_forward) lives in a network namespace with no way out, /etc
#     and /var are overlays whose changes land in a scratch directory, /run
#     and /tmp are fresh, and the kernel ends every process the run started
#     when the namespace's first process ends;
#  4. vagrant box add, vagrant up (boot), vagrant provision (the package in,
#     apt-get install, then integration/vagrant-scenario.sh, or with
#     NSVPN_VAGRANT_SUITE=1 the whole integration suite), vagrant destroy;
#  5. the host afterwards: no new link, address, route, rule, nft or
#     iptables rule, libvirt state, vagrant state or process; only the box
#     (and the last run's logs, target/vagrant/last-run) stay under target/.
# Prints the times (box build, boot, provision, scenario, destroy) and the
# box's size. Exits 0 only when the scenario passed and the host is clean.
#
# Usage: sudo integration/vagrant.sh [NSVPN_DEB]
# Environment:
#   NSVPN_VAGRANT_ACCEL   qemu (default here) or kvm
#   NSVPN_VAGRANT_MEMORY  MiB for the VM (default 1536); NSVPN_VAGRANT_CPUS (2)
#   NSVPN_VAGRANT_SUITE=1 the whole integration suite in the VM (a box with
#                         every package the suite needs; slow under emulation)
#   NSVPN_VAGRANT_KEEP=1  keep the scratch directory (libvirt's volumes, logs)
#   NSVPN_VAGRANT_TIMEOUT seconds for the scenario (default 900; the suite 14400);
#                         vagrant up and the package's install get 900 each
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
say() { echo "vagrant: $*"; }
die() { echo "vagrant: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (sudo $0): libvirtd and its network run in namespaces of this script's own"
state=$root/target/vagrant

# host_state: what the run must not change on the host.
host_state() {
  echo "## links"; ip -o link | awk '{print $2}' | sort
  echo "## addresses"; ip -o addr | awk '{print $2, $4}' | sort
  echo "## routes"; { ip -4 route show table all; ip -6 route show table all; } | grep -v fe80 | sort
  echo "## rules"; ip rule; ip -6 rule
  echo "## nft"; nft list ruleset 2> /dev/null
  echo "## iptables"; for t in iptables-save ip6tables-save ebtables-save; do
    command -v "$t" > /dev/null && "$t" 2> /dev/null | grep -v '^#'; done
  echo "## sysctl"; sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding
  echo "## files"
  local d
  for d in /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /run/libvirt \
    /root/.vagrant.d /root/.config/libvirt /root/.cache/libvirt /root/.local/share/libvirt "$root/.vagrant"; do
    [ -e "$d" ] && find "$d" -printf '%p %y %s %m\n' 2> /dev/null | sort
  done
  find /tmp /var/tmp -maxdepth 1 \( -iname '*vagrant*' -o -iname '*libvirt*' -o -iname '*qemu*' \) 2> /dev/null | sort
  echo "## processes"
  ps -e -o comm= | grep -xE 'libvirtd|virtlogd|virtlockd|virtqemud|virtnetworkd' | sort
  pgrep -af "target/vagrant/run\." | grep -v pgrep | awk '{print $2, $3}' | sort
  true
}

if [ "${1:-}" != --in-namespace ]; then
  need() { command -v "$1" > /dev/null || die "$1 is missing (Debian package: $2)"; }
  need vagrant vagrant
  need libvirtd libvirt-daemon
  need virsh libvirt-clients
  need qemu-system-x86_64 qemu-system-x86
  need iptables iptables
  need dnsmasq dnsmasq-base
  need rsync rsync
  need ssh openssh-client
  [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] \
    || ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so > /dev/null 2>&1 \
    || die "libvirt's qemu driver is missing (Debian package: libvirt-daemon-driver-qemu)"
  pgrep -x libvirtd > /dev/null && die "a libvirtd runs on this machine already; this script runs its own and would not tell them apart"
  mkdir -p "$state"
  # Scratch directories of runs that were killed (no libvirtd runs, so no
  # run is under way).
  rm -rf "$state"/run.*
  t_start=$(date +%s)

  if [ -n "${1:-}" ]; then
    deb=$(realpath "$1")
  elif [ -n "${NSVPN_VAGRANT_DEB:-}" ]; then
    deb=$(realpath "$NSVPN_VAGRANT_DEB")
  else
    [ "$(cargo deb --version 2> /dev/null)" ] || die "cargo-deb is missing (cargo install cargo-deb --locked)"
    say "building the package: cargo deb --locked"
    deb=$(cd "$root" && cargo deb --locked 2> "$state/cargo-deb.log" | tail -n 1) || { cat "$state/cargo-deb.log" >&2; die "cargo deb failed"; }
  fi
  [ -f "$deb" ] || die "no package at $deb"
  say "package: $deb ($(stat -c %s "$deb") bytes)"

  flavor=scenario
  [ "${NSVPN_VAGRANT_SUITE:-}" = 1 ] && flavor=suite
  t=$(date +%s)
  box=$(NSVPN_BOX_FLAVOR=$flavor "$here/vagrant-box.sh" "$state" | tail -n 1) || die "the box was not built"
  t_box=$(($(date +%s) - t))
  box_size=$(stat -c %s "$box")
  say "box: $box, $((box_size / 1024 / 1024)) MiB ($box_size bytes), ready in $t_box s"

  before=$(host_state)
  work=$(mktemp -d "$state/run.XXXXXX")
  chmod 755 "$work"
  [ "${NSVPN_VAGRANT_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
  last=$state/last-run
  rm -rf "$last"
  set +e
  unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    "$0" --in-namespace "$deb" "$box" "$work" "$flavor"
  rc=$?
  set -e
  # The logs stay (target/vagrant/last-run); the VM's disk, libvirt's state
  # and vagrant's go.
  mkdir -p "$last"
  for f in times scenario.log up.log provision.log destroy.log console.log libvirtd.log libvirt-after-destroy; do
    [ -f "$work/$f" ] && cp "$work/$f" "$last/"
  done
  if [ "${NSVPN_VAGRANT_KEEP:-}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
  trap - EXIT

  after=$(host_state)
  if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") | sed 's/^/vagrant:   /' >&2
    say "FAIL: the host changed (above: < before, > after)"
    rc=1
  else
    say "the host is as it was: no new link, address, route, rule, nft/iptables rule, libvirt or vagrant state, or process"
  fi
  # shellcheck disable=SC1091
  [ -f "$last/times" ] && . "$last/times"
  say "times: box ${t_box} s$([ "$t_box" -le 2 ] && echo " (cached)"), libvirtd ${t_libvirtd:-?} s, box add ${t_add:-?} s, boot (vagrant up) ${t_boot:-?} s, provision (package in, apt install) ${t_provision:-?} s, ${flavor} ${t_scenario:-?} s, destroy ${t_destroy:-?} s; all $(($(date +%s) - t_start)) s"
  say "box size: $((box_size / 1024 / 1024)) MiB ($box_size bytes); VM disk in use after the run: ${vm_disk:-?}"
  [ $rc = 0 ] && say "PASS" || say "FAIL (logs: $last)"
  exit $rc
fi

# In the namespaces: libvirtd, vagrant, the VM.
deb=$2 box=$3 work=$4 flavor=$5
log() { echo "vagrant: $*"; }
ip link set lo up
mount -t tmpfs -o mode=0755 nsvpn-vagrant-run /run
mkdir -p /run/lock /run/.etc/upper /run/.etc/work "$work/var/upper" "$work/var/work"
mount -t tmpfs -o mode=1777 nsvpn-vagrant-tmp /tmp
mount -t overlay nsvpn-vagrant-etc -o lowerdir=/etc,upperdir=/run/.etc/upper,workdir=/run/.etc/work /etc
mount -t overlay nsvpn-vagrant-var -o "lowerdir=/var,upperdir=$work/var/upper,workdir=$work/var/work" /var
export HOME=$work/home
mkdir -p "$HOME"

# libvirt's qemu driver wants its user to exist even when qemu.conf says
# root (libvirt-daemon-system would add it): here, in the overlay's passwd.
getent passwd libvirt-qemu > /dev/null || echo 'libvirt-qemu:x:64055:64055:libvirt qemu:/nonexistent:/usr/sbin/nologin' >> /etc/passwd
getent group libvirt-qemu > /dev/null || echo 'libvirt-qemu:x:64055:' >> /etc/group
# libvirtd as root, qemu as root in this namespace: no cgroups of libvirt's,
# no security driver, the domain's console and stdio to files (no virtlogd).
mkdir -p /etc/libvirt
cat > /etc/libvirt/qemu.conf <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
EOF
cat > /etc/libvirt/libvirtd.conf <<EOF
log_outputs = "3:file:$work/libvirtd.log"
EOF
t=$(date +%s)
libvirtd > "$work/libvirtd.out" 2>&1 &
libvirtd_pid=$!
for _ in $(seq 300); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
virsh -q -c qemu:///system version > /dev/null 2>&1 || { cat "$work/libvirtd.out" "$work/libvirtd.log" >&2; log "FAIL: libvirtd did not start"; exit 1; }
t_libvirtd=$(($(date +%s) - t))
log "libvirtd $(libvirtd --version | awk '{print $NF}') up in ${t_libvirtd} s (pid $libvirtd_pid, in this script's namespaces)"

export VAGRANT_HOME=$work/vagrant-home VAGRANT_DOTFILE_PATH=$work/dot \
  VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1 \
  NSVPN_VAGRANT_DEB=$deb NSVPN_VAGRANT_ACCEL=${NSVPN_VAGRANT_ACCEL:-qemu} \
  NSVPN_VAGRANT_MEMORY=${NSVPN_VAGRANT_MEMORY:-1536} NSVPN_VAGRANT_CPUS=${NSVPN_VAGRANT_CPUS:-2} \
  NSVPN_VAGRANT_CONSOLE=$work/console.log
boxname=nsvpn/bookworm-local
if [ "$flavor" = suite ]; then boxname=nsvpn/bookworm-local-suite; export NSVPN_VAGRANT_SUITE=1; fi
export NSVPN_VAGRANT_BOX=$boxname
cd "$root"
up=no
destroy() {
  local t
  t=$(date +%s)
  vagrant destroy -f > "$work/destroy.log" 2>&1 || { cat "$work/destroy.log"; log "FAIL: vagrant destroy failed"; return 1; }
  echo "t_destroy=$(($(date +%s) - t))" >> "$work/times"
  up=no
}
finish() {
  [ $up = yes ] && destroy
  kill "$libvirtd_pid" 2> /dev/null && wait "$libvirtd_pid" 2> /dev/null
  true
}
trap finish EXIT
echo "t_libvirtd=$t_libvirtd" > "$work/times"

t=$(date +%s)
vagrant box add --name "$boxname" "$box" > "$work/box-add.log" 2>&1 || { cat "$work/box-add.log"; log "FAIL: vagrant box add"; exit 1; }
echo "t_add=$(($(date +%s) - t))" >> "$work/times"
log "vagrant box add --name $boxname: $(($(date +%s) - t)) s"

log "vagrant up --no-provision (libvirt, domain type $NSVPN_VAGRANT_ACCEL, $NSVPN_VAGRANT_CPUS vCPUs, $NSVPN_VAGRANT_MEMORY MiB)"
t=$(date +%s)
up=yes
rc=0
timeout 900 vagrant up --provider=libvirt --no-provision > "$work/up.log" 2>&1 || rc=$?
echo "t_boot=$(($(date +%s) - t))" >> "$work/times"
# (vagrant-libvirt's upload progress redraws one line: its last state only)
sed -E 's/^.*Progress: [0-9]+%[[:cntrl:]]*(\[K)?//; s/^/vagrant:   /' "$work/up.log"
[ $rc = 0 ] || { tail -n 40 "$work/console.log" 2> /dev/null | sed 's/^/vagrant:   console: /'; log "FAIL: vagrant up failed"; exit 1; }
log "booted in $(($(date +%s) - t)) s"

t=$(date +%s)
rc=0
timeout 900 vagrant provision --provision-with nsvpn-package,nsvpn-install > "$work/provision.log" 2>&1 || rc=$?
echo "t_provision=$(($(date +%s) - t))" >> "$work/times"
sed 's/^/vagrant:   /' "$work/provision.log"
[ $rc = 0 ] || { log "FAIL: installing the package in the VM failed"; exit 1; }

t=$(date +%s)
rc=0
tmo=${NSVPN_VAGRANT_TIMEOUT:-900}
[ "$flavor" = suite ] && tmo=${NSVPN_VAGRANT_TIMEOUT:-14400}
timeout "$tmo" vagrant provision --provision-with nsvpn-scenario > "$work/scenario.log" 2>&1 || rc=$?
[ $rc = 124 ] && log "the $flavor did not finish within $tmo s (NSVPN_VAGRANT_TIMEOUT)"
echo "t_scenario=$(($(date +%s) - t))" >> "$work/times"
sed 's/^/vagrant:   /' "$work/scenario.log"
echo "vm_disk='$(vagrant ssh -c 'df -h --output=used / | tail -n 1' 2> /dev/null | tr -d ' \r')'" >> "$work/times"
# The provisioner's own exit status, and the summary line it printed.
summary=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$work/scenario.log" | tail -n 1)
[ $rc = 0 ] && [ -n "$summary" ] && [ "${summary#* passed, }" = "0 failed" ] && [ "${summary%% *}" -gt 0 ] \
  || { log "FAIL: the $flavor in the VM failed (${summary:-no summary})"; exit 1; }
log "the $flavor in the VM passed: $summary"

destroy || exit 1
# What destroy left in libvirt (in this namespace): no domain, no network,
# and in the pool only the box's image, which vagrant-libvirt keeps for the
# next VM of the same box (it goes with the scratch directory here).
{
  echo "domains: $(virsh -q list --all --name | xargs)"
  echo "networks: $(virsh -q net-list --all --name | xargs)"
  echo "volumes: $(virsh -q vol-list default 2> /dev/null | awk '{print $1}' | xargs)"
  echo "links: $(ip -o link | awk '{print $2}' | xargs)"
} > "$work/libvirt-after-destroy"
sed 's/^/vagrant: after destroy, libvirt has /' "$work/libvirt-after-destroy"
[ -z "$(virsh -q list --all --name)" ] || { log "FAIL: a domain is left after vagrant destroy"; exit 1; }
[ -z "$(virsh -q net-list --all --name)" ] || { log "FAIL: a network is left after vagrant destroy"; exit 1; }
[ -z "$(virsh -q vol-list default 2> /dev/null | awk '{print $1}' | grep -v _vagrant_box_image_)" ] \
  || { log "FAIL: a volume of the VM is left after vagrant destroy"; exit 1; }
[ "$(ip -o link | awk '{print $2}' | xargs)" = "lo:" ] || { log "FAIL: a link is left after vagrant destroy"; exit 1; }
exit 0
