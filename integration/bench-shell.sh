#!/usr/bin/env bash
# The shell equivalent of `nsvpn up`/`down` for a wireguard-go profile, for
# integration/bench.sh to measure nsvpn against: the same plumbing done with
# `ip`, `wg` and `wireguard-go`, as a careful user would script it.
#   up:    ip netns add; the veth pair with its addresses; wireguard-go,
#          waiting for its UAPI socket; wg set with key, peer, endpoint and
#          allowed IPs; the device moved in, addressed, its MTU set, up; the
#          routes; resolv.conf; then ping until the handshake is done.
#   down:  ip netns del; the /etc/netns directory removed; then wait until
#          the host's veth end and the UAPI socket are gone.
#   flat-up / flat-down: the same tunnel with no namespace at all (the
#          device stays on the host, with the routes): the reference for
#          throughput through a tunnel.
# With BENCH_STAMPS=FILE, `up` writes to FILE the times (s, bash's
# EPOCHREALTIME: no process) just before and just after the device's move
# into the namespace, for bench.sh's split of up.
# Usage: bench-shell.sh up|down|flat-up|flat-down WG_CONF
# WG_CONF: a wg-quick file with Address, PrivateKey and one [Peer] (the
# lab's alpha.conf); the routes are its AllowedIPs, the ping goes to the
# first AllowedIPs network's .1.
set -euo pipefail
action=$1 conf=$2
ns=nsb-shell host=nsbh-shell inner=nsbn-shell dev=nsbt-shell
sock=/var/run/wireguard/$dev.sock

field() { sed -n "s/^$1 *= *//p" "$conf" | head -n 1; }

start_wg() {
  mkdir -p /var/run/wireguard
  setsid wireguard-go -f "$dev" > /dev/null 2>&1 < /dev/null &
  until [ -S "$sock" ]; do sleep 0.001; done
  wg set "$dev" private-key <(field PrivateKey) \
    peer "$(field PublicKey)" endpoint "$(field Endpoint)" allowed-ips "$(field AllowedIPs | tr -d ' ')"
}

routes() { field AllowedIPs | tr ',' '\n' | tr -d ' '; }
# The first routed network's .1: the lab's gateway answers there.
target() { field AllowedIPs | tr ',' '\n' | tr -d ' ' | tail -n 1 | sed 's|\.[0-9]*/.*|.1|'; }

case $action in
  up)
    ip netns add "$ns"
    ip link add "$host" type veth peer name "$inner" netns "$ns"
    ip addr add 169.254.240.1/30 dev "$host"
    ip link set "$host" up
    ip -n "$ns" addr add 169.254.240.2/30 dev "$inner"
    ip -n "$ns" link set "$inner" up
    ip -n "$ns" link set lo up
    start_wg
    m0=$EPOCHREALTIME
    ip link set "$dev" netns "$ns"
    [ -z "${BENCH_STAMPS:-}" ] || echo "$m0 $EPOCHREALTIME" > "$BENCH_STAMPS"
    ip -n "$ns" addr add "$(field Address)" dev "$dev"
    ip -n "$ns" link set "$dev" mtu 1420 up
    for r in $(routes); do ip -n "$ns" route add "$r" dev "$dev"; done
    mkdir -p "/etc/netns/$ns"
    echo "nameserver $(field DNS | cut -d, -f1)" > "/etc/netns/$ns/resolv.conf"
    until ip netns exec "$ns" ping -c 1 -W 1 -q "$(target)" > /dev/null 2>&1; do :; done
    ;;
  down)
    ip netns del "$ns"
    rm -rf "/etc/netns/$ns"
    while ip link show "$host" > /dev/null 2>&1 || [ -S "$sock" ]; do sleep 0.001; done
    ;;
  flat-up)
    start_wg
    ip addr add "$(field Address)" dev "$dev"
    ip link set "$dev" mtu 1420 up
    for r in $(routes); do ip route add "$r" dev "$dev"; done
    until ping -c 1 -W 1 -q "$(target)" > /dev/null 2>&1; do :; done
    ;;
  flat-down)
    ip link del "$dev"
    while [ -S "$sock" ]; do sleep 0.001; done
    ;;
  *) echo "usage: $0 up|down|flat-up|flat-down WG_CONF" >&2; exit 2 ;;
esac
