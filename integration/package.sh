#!/usr/bin/env bash
# The Debian package: built with cargo-deb (the README's command), installed
# with apt into a throwaway root, checked, proven under a booted systemd, and
# removed again.
#
# The throwaway root is an overlay on this machine's / whose changes live in
# a tmpfs, in a mount namespace of this script's own: the machine's own
# dpkg database, /usr and /etc never see the package, and the kernel drops
# every mount of the test when the script ends, also when it fails or is
# killed. In that root:
#  - `apt-get install ./nsvpn_*.deb`; every file dpkg -c lists is in place,
#    /etc/nsvpn/profiles is root's with mode 0755; `nsvpn --version` runs;
#    `man nsvpn` and `man nsvpn-up` render; bash loads the completion through
#    bash-completion's loader (`complete -p nsvpn`) and completes `nsvpn st`;
#    zsh's compinit finds _nsvpn; `systemd-analyze verify` accepts the
#    installed unit;
#  - systemd boots (systemd-nspawn --boot --private-network: a network
#    namespace of its own, nothing reaches the machine's network) and
#    systemd-proof.sh runs as a service there: systemctl start nsvpn@alpha
#    against a lab WireGuard gateway, status, an exec inside, stop, nothing
#    left;
#  - `apt-get remove` leaves a profile in /etc/nsvpn/profiles and nothing
#    else of the package; `dpkg --purge` after the profile is gone leaves
#    nothing at all.
# Usage: sudo integration/package.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "package: run as root (sudo $0): it mounts a throwaway root and boots systemd in it" >&2; exit 1; }
say() { echo "package: $*"; }
die() { echo "package: FAIL: $*" >&2; exit 1; }

if [ "${1:-}" != --in-mount-namespace ]; then
  need() { command -v "$1" > /dev/null || die "$1 is missing (Debian package: $2)"; }
  need systemd-nspawn systemd-container
  need systemd-analyze systemd
  need man man-db
  [ -r /usr/share/bash-completion/bash_completion ] || die "bash-completion is missing (Debian package: bash-completion)"
  [ "$(cargo deb --version 2>/dev/null)" ] || die "cargo-deb is missing (cargo install cargo-deb --locked)"
  # The root the test mounts is an overlay of / alone.
  for d in /usr /etc /var; do
    [ "$(findmnt -n -o TARGET --target "$d")" = / ] || die "$d is a file system of its own; the throwaway root overlays / only"
  done
  cd "$root"
  say "building: cargo deb --locked"
  deb=$(cargo deb --locked 2> "$root/target/cargo-deb.log" | tail -n 1) || { cat "$root/target/cargo-deb.log" >&2; die "cargo deb failed"; }
  [ -f "$deb" ] || die "cargo deb made no package (log: target/cargo-deb.log)"
  say "$(basename "$deb"): $(stat -c %s "$deb") bytes, installed size $(dpkg-deb -f "$deb" Installed-Size) KiB"
  dpkg-deb -f "$deb" Depends Recommends Suggests | sed 's/^/package:   /'
  dpkg-deb -c "$deb" | sed 's/^/package:   /'
  exec unshare --mount --propagation private --fork "$here/package.sh" --in-mount-namespace "$deb"
fi
deb=$2

t0=$(date +%s)
work=$(mktemp -d /tmp/nsvpn-package.XXXXXX)
nspawn_run_made=no
[ -e /run/systemd/nspawn ] || nspawn_run_made=yes
cleanup() {
  umount -R "$work" 2> /dev/null || umount -lR "$work" 2> /dev/null || true
  rmdir "$work" 2> /dev/null || true
  # systemd-nspawn leaves its (empty) lock and propagation directories.
  [ $nspawn_run_made = yes ] && rm -rf /run/systemd/nspawn
  true
}
trap cleanup EXIT
mount -t tmpfs -o mode=0755 nsvpn-package "$work"
mkdir "$work/upper" "$work/work" "$work/root"
mount -t overlay nsvpn-package-root -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$work/root"
R=$work/root

# Only the package's own files are checked below: none may be here already.
mapfile -t files < <(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}')
for f in "${files[@]}" /etc/nsvpn; do
  [ ! -e "$R$f" ] || die "$f exists on this machine already; remove it (or the installed nsvpn) first"
done

# in_root CMD...: runs in the throwaway root with its own /proc, /dev, /run.
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount -t tmpfs -o mode=0755 run "$R/run"
in_root() {
  chroot "$R" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}

say "installing: apt-get install ./$(basename "$deb") (in the throwaway root)"
cp "$deb" "$R/tmp/"
in_root sh -c "cd /tmp && apt-get install -y -q --no-install-recommends ./$(basename "$deb")" > "$work/apt-install.log" 2>&1 \
  || { cat "$work/apt-install.log" >&2; die "apt-get install failed"; }
rm "$R/tmp/$(basename "$deb")"
for f in "${files[@]}"; do [ -e "$R$f" ] || die "$f is not installed"; done
[ "$(stat -c '%U:%G %a' "$R/etc/nsvpn/profiles")" = "root:root 755" ] || die "/etc/nsvpn/profiles is not root's with mode 0755"
say "every file is in place (${#files[@]} files), and /etc/nsvpn/profiles (root, 0755)"
v=$(in_root nsvpn --version) || die "nsvpn --version failed"
say "\$ nsvpn --version: $v"
for page in nsvpn nsvpn-up nsvpn-completions; do
  out=$(in_root env MANWIDTH=80 man -P cat "$page" 2> "$work/man.err") || { cat "$work/man.err" >&2; die "man $page failed"; }
  grep -q "^NAME" <<< "$out" && grep -q "^SYNOPSIS" <<< "$out" || die "man $page has no NAME or SYNOPSIS"
  [ ! -s "$work/man.err" ] || { cat "$work/man.err" >&2; die "man $page warned"; }
done
say "\$ man nsvpn (head):"
in_root env MANWIDTH=80 man -P cat nsvpn | head -n 9 | sed 's/^/package:   /'
# The loader returns 124 once it has loaded a completion (readline's "retry").
c=$(in_root bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader nsvpn; complete -p nsvpn') \
  || die "bash-completion does not load nsvpn's completion"
say "\$ complete -p nsvpn: $c"
words=$(in_root bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader nsvpn
  COMP_WORDS=(nsvpn st); COMP_CWORD=1; COMP_LINE="nsvpn st"; COMP_POINT=8; _nsvpn nsvpn st nsvpn; echo "${COMPREPLY[*]}"')
[ "$words" = status ] || die "bash completes 'nsvpn st' to '$words', not status"
say "bash completes 'nsvpn st' to: $words"
if [ -x "$R/usr/bin/zsh" ]; then
  z=$(in_root zsh -fc 'autoload -Uz compinit && compinit -u -d /tmp/nsvpn-zcompdump && print -r -- $_comps[nsvpn]; rm -f /tmp/nsvpn-zcompdump')
  [ "$z" = _nsvpn ] || die "zsh's compinit does not find _nsvpn (got '$z')"
  say "zsh: compinit maps nsvpn to $z"
fi
if [ -x "$R/usr/bin/fish" ]; then
  in_root fish -n /usr/share/fish/vendor_completions.d/nsvpn.fish || die "fish cannot parse nsvpn.fish"
  say "fish: nsvpn.fish parses"
fi
in_root systemd-analyze verify /usr/lib/systemd/system/nsvpn@.service > "$work/verify.log" 2>&1 \
  || { cat "$work/verify.log" >&2; die "systemd-analyze verify nsvpn@.service failed"; }
[ ! -s "$work/verify.log" ] || { cat "$work/verify.log" >&2; die "systemd-analyze verify nsvpn@.service warned"; }
say "systemd-analyze verify nsvpn@.service: clean"
say "checks of the installed package took $(($(date +%s) - t0)) s"

# nsvpn@.service under a booted systemd, in a network namespace of its own.
mkdir -p "$R/nsvpn-proof"
cp "$here/systemd-proof.sh" "$here/lab.sh" "$R/nsvpn-proof/"
cat > "$R/etc/systemd/system/nsvpn-proof.service" <<'EOF'
[Unit]
Description=nsvpn package test: nsvpn@.service
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash -c '/nsvpn-proof/systemd-proof.sh; systemctl --no-block exit $?'
StandardOutput=journal+console
StandardError=journal+console
EOF
cat > "$R/etc/systemd/system/nsvpn-proof.target" <<'EOF'
[Unit]
Description=nsvpn package test
Requires=basic.target nsvpn-proof.service
After=basic.target
EOF
umount "$R/proc" "$R/dev" "$R/run"
say "booting systemd in the throwaway root (systemd-nspawn --boot --private-network)"
t1=$(date +%s)
set +e
timeout -k 10 240 systemd-nspawn --quiet --boot --private-network --register=no --keep-unit \
  --link-journal=no --directory="$R" --machine="nsvpn-package-$$" -- \
  systemd.unit=nsvpn-proof.target systemd.show_status=false < /dev/null > "$work/console.log" 2>&1
rc=$?
set -e
grep -a 'systemd-proof' "$work/console.log" | sed 's/^bash\[[0-9]*\]: //; s/^/package:   /'
say "the booted systemd ran $(($(date +%s) - t1)) s (exit status $rc)"
if [ $rc != 0 ] || ! grep -aq 'systemd-proof: PASS' "$work/console.log"; then
  sed 's/^/package:   console: /' "$work/console.log" | tail -n 60 >&2
  die "nsvpn@.service under systemd failed"
fi
rm -rf "$R/nsvpn-proof" "$R/etc/systemd/system/nsvpn-proof.service" "$R/etc/systemd/system/nsvpn-proof.target"

# Removal: a profile stays, nothing else of the package does.
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount -t tmpfs -o mode=0755 run "$R/run"
printf '[vpn]\nkind = "wireguard"\nconfig = "/etc/wireguard/keep.conf"\n' > "$R/etc/nsvpn/profiles/keep.toml"
in_root apt-get remove -y -q nsvpn > "$work/apt-remove.log" 2>&1 || { cat "$work/apt-remove.log" >&2; die "apt-get remove failed"; }
for f in "${files[@]}"; do [ ! -e "$R$f" ] || die "$f is left after apt-get remove"; done
[ -f "$R/etc/nsvpn/profiles/keep.toml" ] || die "apt-get remove took the profile in /etc/nsvpn/profiles"
say "apt-get remove: the package's files are gone, /etc/nsvpn/profiles/keep.toml stayed"
rm "$R/etc/nsvpn/profiles/keep.toml"
in_root dpkg --purge nsvpn > "$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; die "dpkg --purge failed"; }
[ ! -e "$R/etc/nsvpn" ] || die "/etc/nsvpn is left after purge"
state=$(in_root dpkg-query -W -f '${db:Status-Abbrev}' nsvpn 2> /dev/null || true)
[ -z "$state" ] || [ "${state:0:2}" = un ] || die "dpkg still knows nsvpn ($state)"
# Nothing else of the package in the root's changes either (dpkg's and apt's
# own records and man-db's cache aside).
extra=$(cd "$work/upper" && find . \( -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache -o -path ./var/log -o -path ./tmp -o -path ./run \) -prune -o -print | grep -i nsvpn || true)
[ -z "$extra" ] || die "left in the root after purge: $extra"
say "dpkg --purge (profile directory empty): /etc/nsvpn is gone, dpkg forgot nsvpn, nothing of it left"
say "PASS in $(($(date +%s) - t0)) s"
