#!/usr/bin/env bash
# Benchmarks, in the lab sandbox: the cost of `nsvpn exec` against
# `ip netns exec`, and the time of `up`/`down` for a WireGuard profile
# (with nsvpn's own share, which it prints, apart from the handshake).
# Usage: sudo integration/bench.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=outside.sh
source "$here/outside.sh" "$here/bench.sh" "$@"
export PATH=$root/target/release:$PATH
source "$here/lab.sh"
trap lab_down EXIT
lab_up > /run/lab-setup.log 2>&1
nsvpn up alpha > /dev/null

echo "## exec: nsvpn exec against ip netns exec (absolute path: no PATH search)"
hyperfine -N --warmup 20 --runs 300 \
  "nsvpn exec alpha -- /bin/true" \
  "ip netns exec nsvpn-alpha /bin/true" \
  "env SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody nsvpn exec alpha -- /bin/true"
nsvpn down alpha > /dev/null

echo "## up + down of a WireGuard profile (wireguard-go), 20 rounds"
hyperfine -N --warmup 2 --runs 20 "sh -c 'nsvpn up alpha >/dev/null && nsvpn down alpha >/dev/null'"
echo "## up alone: nsvpn's own work against the handshake, 10 rounds"
for _ in $(seq 10); do nsvpn up alpha | sed 's/.*(WireGuard, //; s/). Run.*//'; nsvpn down alpha > /dev/null; done
echo "## down alone, 10 rounds"
for _ in $(seq 10); do
  nsvpn up alpha > /dev/null
  s=$(date +%s%N); nsvpn down alpha > /dev/null; e=$(date +%s%N)
  echo "down: $(( (e - s) / 1000000 )) ms"
done
