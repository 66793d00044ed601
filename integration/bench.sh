#!/usr/bin/env bash
# Benchmarks, in the lab sandbox: the cost of `nsvpn exec` against
# `ip netns exec`, the time of `up`/`down` for each back-end (with
# nsvpn's own share, which `up` prints, apart from the wait for the VPN),
# and split tunnel: `up` with and without [split], name look-ups inside
# through the split resolver, and a forward's throughput against a direct
# connection to the same service.
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

echo "## split tunnel: alpha with and without [split] internet = true (and a kept forward)"
{ cat "$LAB_DIR/profiles/alpha.toml"
  printf '[split]\ninternet = true\n[forward]\nports = ["15432:10.20.1.5:9000"]\n'; } > "$LAB_DIR/profiles/salpha.toml"
hyperfine -N --warmup 1 --runs 10 \
  "sh -c 'nsvpn up alpha >/dev/null && nsvpn down alpha >/dev/null'" \
  "sh -c 'nsvpn up salpha >/dev/null && nsvpn down salpha >/dev/null'"
for p in alpha salpha; do
  for _ in $(seq 3); do
    out=$(nsvpn up $p); echo "$p up: $(echo "$out" | sed 's/.*is up (//; s/). Run.*//')"; nsvpn down $p > /dev/null
  done
done
nsvpn up salpha > /dev/null
echo "## name look-ups inside salpha, through its split resolver (dnsmasq)"
for n in db.internal "$LAB_INET_NAME"; do
  first=$(ip netns exec nsvpn-salpha dig +tries=1 +noall +stats "$n" | sed -n 's/;; Query time: //p')
  echo "$n: first look-up (not cached) $first (dig counts whole milliseconds)"
done
hyperfine -N --warmup 5 --runs 100 \
  "ip netns exec nsvpn-salpha getent hosts db.internal" \
  "ip netns exec nsvpn-salpha getent hosts $LAB_INET_NAME" \
  "ip netns exec nsvpn-salpha getent hosts localhost"
echo "## throughput: 256 MiB from a service behind the VPN, directly from inside against through the kept forward"
ip netns exec lab-db-alpha socat TCP-LISTEN:9000,bind=10.20.1.5,reuseaddr,fork SYSTEM:'head -c 268435456 /dev/zero' &
served=$!
for _ in $(seq 100); do ip netns exec lab-db-alpha ss -Hltn 'sport = :9000' | grep -q . && break; sleep 0.02; done
hyperfine -N --warmup 1 --runs 3 \
  "ip netns exec nsvpn-salpha socat -u TCP:10.20.1.5:9000 OPEN:/dev/null" \
  "socat -u TCP:127.0.0.1:15432 OPEN:/dev/null"
kill "$served"; wait "$served" 2> /dev/null || true
nsvpn down salpha > /dev/null
rm -f "$LAB_DIR/profiles/salpha.toml"
