#!/usr/bin/env bash
# The demo: builds nsvpn and runs a self-contained lab with two VPNs that
# claim the same subnet, runs a command in each, and tears everything down.
# Everything happens inside a sandbox (see sandbox.sh): nothing touches the
# machine's real network, /run or /etc/netns.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

# shellcheck source=outside.sh
source "$here/outside.sh" "$here/demo.sh" "$@"

export PATH=$root/target/release:$PATH
# shellcheck source=lab.sh
source "$here/lab.sh"
trap lab_down EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

trap 'echo "demo: the lab did not start; its log:" >&2; tail -n 20 /run/lab-setup.log >&2' ERR
lab_up > /run/lab-setup.log 2>&1
trap - ERR
echo "Two VPN gateways are running, both fronting 10.20.0.0/16 with db.internal = 10.20.1.5."

run nsvpn list
run nsvpn up alpha
run nsvpn up bravo
run nsvpn exec alpha -- psql -h db.internal -U lab -d lab -Atc "select 'alpha says: ' || name from side"
run nsvpn exec bravo -- psql -h db.internal -U lab -d lab -Atc "select 'bravo says: ' || name from side"
run nsvpn exec alpha -- getent hosts db.internal
run nsvpn exec bravo -- cat /etc/resolv.conf
say "ip route   # the host's own routing table: no 10.20.0.0/16 anywhere"
ip route
run nsvpn status bravo
run nsvpn down alpha
run nsvpn down bravo
run nsvpn list
echo
echo "demo: done; both namespaces, their links, wireguard-go and /etc/netns files are gone."
