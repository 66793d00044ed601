#!/usr/bin/env bash
# The demo: builds nsvpn and runs a self-contained lab with two VPNs that
# claim the same subnet, runs a command in each, and tears everything down.
# Everything happens inside a sandbox (see sandbox.sh): nothing touches the
# machine's real network, /run or /etc/netns.
set -Eeuo pipefail
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
echo "VPN gateways are running (WireGuard, OpenVPN, ocserv), all fronting 10.20.0.0/16 with db.internal = 10.20.1.5."

run nsvpn list
run nsvpn up alpha     # WireGuard
run nsvpn up charlie   # OpenVPN, the provider's .ovpn used as is
run nsvpn up delta     # OpenConnect to an AnyConnect-style gateway
for p in alpha charlie delta; do
  run nsvpn exec $p -- psql -h db.internal -U lab -d lab -Atc "select '$p says: ' || name from side"
done
run nsvpn exec charlie -- cat /etc/resolv.conf
run nsvpn exec delta -- ip route
say "ip route   # the host's own routing table: no 10.20.0.0/16 anywhere"
ip route
run nsvpn status charlie
run nsvpn down alpha
run nsvpn down charlie
run nsvpn down delta

echo
echo "A split profile: the same WireGuard VPN for its range and its names (db.internal), the lab's"
echo "internet directly (www.public.example, which the host's DNS answers), and the VPN's database"
echo "kept on the host's 127.0.0.1:15432 for programs that run outside."
{ sed 's/^description = .*/description = "alpha, split"/' "$LAB_DIR/profiles/alpha.toml"
  printf '[split]\ninternet = true\n[forward]\nports = ["15432:db.internal:5432"]\n'; } > "$LAB_DIR/profiles/customer.toml"
run cat "$LAB_DIR/profiles/customer.toml"
run nsvpn up customer
run nsvpn exec customer -- sh -c "psql -h db.internal -U lab -d lab -Atc \"select 'the VPN says: ' || name from side\"; curl -sS http://$LAB_INET_NAME/"
run psql -h 127.0.0.1 -p 15432 -U lab -d lab -Atc "select 'through the forward, from the host: ' || name from side"
run nsvpn status customer
run nsvpn down customer
run nsvpn list
echo
echo "demo: done; the namespaces, their links, the VPN clients and /etc/netns files are gone."
