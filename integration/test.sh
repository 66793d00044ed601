#!/usr/bin/env bash
# The whole test suite: lint, unit and snapshot tests, root tests (each in
# its own sandbox), the integration suite against the real lab, the
# split-tunnel lab probe (split-probe.sh), the kernel-WireGuard scenario in
# a VM, the Debian package and its systemd unit (package.sh), the
# Vagrantfile's validation and `vagrant up` for real (vagrant.sh: the
# offline path, libvirt under software emulation). Needs root; installs the Debian packages it needs.
# Usage: sudo integration/test.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
[ "$(id -u)" = 0 ] || { echo "test: run as root (sudo $0): the root and integration tests create namespaces" >&2; exit 1; }

echo "== packages"
"$here/deps.sh"
echo "== format and lint"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
echo "== build"
cargo build --locked --release
echo "== unit and snapshot tests (root tests show as ignored here)"
cargo test --locked
echo "== parser fuzzing (property tests), bounded: 20000 cases per parser"
PROPTEST_CASES=20000 cargo test --locked --test fuzz
echo "== root tests, each in its own sandbox"
cargo test --locked --test root -- --ignored
echo "== integration suite, in a sandbox"
"$here/sandbox.sh" "$here/suite.sh" "$root/target/release/nsvpn"
echo "== split tunnel: the lab facts it relies on (slirp4netns, dnsmasq), in a sandbox"
"$here/sandbox.sh" "$here/split-probe.sh"
echo "== the benchmark, a smoke run (a few runs of each figure; never fails on a time)"
"$here/sandbox.sh" "$here/bench.sh" --inside --smoke
echo "== kernel WireGuard, in a VM (qemu)"
"$here/vm.sh" "$root/target/release/nsvpn"
echo "== Debian package (built, installed in a throwaway root, nsvpn@.service under a booted systemd, removed)"
"$here/package.sh"
echo "== Vagrantfile"
vagrant validate --ignore-provider
echo "== vagrant up: the package and the scenario in a Vagrant VM (libvirt, qemu), vagrant destroy, the host unchanged"
"$here/vagrant.sh" "$(ls -t "$root"/target/debian/nsvpn_*.deb | head -n 1)"
