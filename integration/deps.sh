#!/usr/bin/env bash
# Installs the Debian packages the lab and the tests need, when missing.
set -euo pipefail
pkgs=(wireguard-go wireguard-tools openvpn openconnect ocserv openssl dnsmasq-base postgresql iproute2 iputils-ping procps util-linux libcap2-bin hyperfine python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
