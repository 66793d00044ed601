#!/usr/bin/env bash
# Benchmarks, in the lab sandbox: the cost of `nsvpn exec` against
# `ip netns exec`, and the time of `up`/`down` for each back-end (with
# nsvpn's own share, which `up` prints, apart from the wait for the VPN).
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

for p in alpha charlie delta; do
  echo "## $p: up + down, 10 rounds"
  hyperfine -N --warmup 1 --runs 10 "sh -c 'nsvpn up $p >/dev/null && nsvpn down $p >/dev/null'"
  echo "## $p: up alone (nsvpn's own work against the wait for the VPN), 5 rounds"
  for _ in $(seq 5); do
    s=$(date +%s%N); out=$(nsvpn up $p); e=$(date +%s%N)
    echo "up: $(( (e - s) / 1000000 )) ms in all; $(echo "$out" | sed 's/.*is up (//; s/). Run.*//')"
    s=$(date +%s%N); nsvpn down $p > /dev/null; e=$(date +%s%N)
    echo "down: $(( (e - s) / 1000000 )) ms"
  done
done
