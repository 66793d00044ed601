# The integration lab, sourced by demo.sh and suite.sh inside sandbox.sh.
#
# Two WireGuard gateways (wireguard-go server side), each in a namespace of
# its own, each fronting an internal network with the SAME subnet
# 10.20.0.0/16: a database host at the SAME address 10.20.1.5 runs
# PostgreSQL with different data, and a dnsmasq on the gateway (10.20.0.53)
# answers db.internal for its side. The client profiles alpha and bravo both
# claim 10.20.0.0/16 and even use the same tunnel address.
#
#   sandbox ("host") --203.0.113.0/30--> lab-gw-alpha --10.20.0.0/16--> lab-db-alpha
#                    --203.0.113.4/30--> lab-gw-bravo --10.20.0.0/16--> lab-db-bravo

LAB_DIR=${LAB_DIR:-/run/nsvpn-lab}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

lab_log() { echo "lab: $*" >&2; }

# lab_gateway NAME INDEX: one gateway and its database host.
lab_gateway() {
  local name=$1 i=$2
  local gw=lab-gw-$name db=lab-db-$name wg=lgw$i
  local up_host=203.0.113.$((i * 4 + 1)) up_gw=203.0.113.$((i * 4 + 2))
  local d=$LAB_DIR/$name
  mkdir -p "$d"

  ip netns add "$gw"
  ip netns add "$db"
  ip -n "$gw" link set lo up
  ip -n "$db" link set lo up
  ip netns exec "$gw" sysctl -qw net.ipv4.ip_forward=1

  # The gateway's "public" side, reachable from the sandbox's host namespace.
  ip link add "lab-up$i" type veth peer name up0 netns "$gw"
  ip addr add "$up_host/30" dev "lab-up$i"
  ip link set "lab-up$i" up
  ip -n "$gw" addr add "$up_gw/30" dev up0
  ip -n "$gw" link set up0 up

  # The internal network.
  ip -n "$gw" link add int0 type veth peer name eth0 netns "$db"
  ip -n "$gw" addr add 10.20.0.1/16 dev int0
  ip -n "$gw" addr add 10.20.0.53/16 dev int0
  ip -n "$gw" link set int0 up
  ip -n "$db" addr add 10.20.1.5/16 dev eth0
  ip -n "$db" link set eth0 up
  ip -n "$db" route add default via 10.20.0.1

  # WireGuard server: wireguard-go started inside the gateway namespace.
  (umask 077; wg genkey > "$d/server.key"; wg genkey > "$d/client.key")
  wg pubkey < "$d/server.key" > "$d/server.pub"
  wg pubkey < "$d/client.key" > "$d/client.pub"
  ip netns exec "$gw" setsid wireguard-go -f "$wg" > "$d/wireguard-go.log" 2>&1 &
  for _ in $(seq 200); do [ -S "/run/wireguard/$wg.sock" ] && break; sleep 0.02; done
  ip netns exec "$gw" wg set "$wg" private-key "$d/server.key" listen-port 51820 \
    peer "$(cat "$d/client.pub")" allowed-ips 10.99.0.2/32
  ip -n "$gw" addr add 10.99.0.1/24 dev "$wg"
  ip -n "$gw" link set "$wg" up

  # DNS for the internal network.
  ip netns exec "$gw" dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts \
    --bind-interfaces --listen-address=10.20.0.53 --pid-file= \
    --address=/db.internal/10.20.1.5 --address="/only-$name.internal/10.20.9.$i" \
    --log-facility="$d/dnsmasq.log" &

  # PostgreSQL on the database host, with data that says which side it is.
  local pg=$d/pg
  mkdir -p "$pg"
  chown postgres: "$pg"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$pg/data" -U lab --auth=trust -E UTF8 > "$d/initdb.log" 2>&1
  echo "host all all 0.0.0.0/0 trust" >> "$pg/data/pg_hba.conf"
  ip netns exec "$db" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg/data" -l "$pg/postgres.log" -w \
    -o "-c listen_addresses=10.20.1.5 -c unix_socket_directories=$pg" start > /dev/null
  ip netns exec "$db" runuser -u postgres -- psql -h "$pg" -U lab -d postgres -q \
    -c "create database lab" \
    -c "\\c lab" \
    -c "create table side(name text)" \
    -c "insert into side values ('$name')" \
    -c "grant select on side to public" > /dev/null

  # The client's wg-quick file and nsvpn profile.
  mkdir -p "$LAB_DIR/profiles"
  cat > "$LAB_DIR/profiles/$name.conf" <<CONF
# Client side of the lab gateway $name.
[Interface]
PrivateKey = $(cat "$d/client.key")
Address = 10.99.0.2/32
DNS = 10.20.0.53, internal

[Peer]
PublicKey = $(cat "$d/server.pub")
Endpoint = $up_gw:51820
AllowedIPs = 10.20.0.0/16, 10.99.0.0/24
CONF
  lab_log "gateway $name: endpoint $up_gw:51820, 10.20.0.0/16 behind it, db.internal = 10.20.1.5"
}

lab_up() {
  mkdir -p "$LAB_DIR"
  lab_gateway alpha 0
  lab_gateway bravo 1
  cat > "$LAB_DIR/profiles/alpha.toml" <<'TOML'
description = "lab gateway alpha (10.20.0.0/16)"
[vpn]
kind = "wireguard"
config = "alpha.conf"
TOML
  cat > "$LAB_DIR/profiles/bravo.toml" <<'TOML'
description = "lab gateway bravo (10.20.0.0/16 too)"
[vpn]
kind = "wireguard"
config = "bravo.conf"
userspace = true
[hosts]
"gateway.bravo" = "10.20.0.1"
TOML
  export NSVPN_PROFILES=$LAB_DIR/profiles
}

# Stops the lab's servers (the sandbox's PID namespace ends the rest).
lab_down() {
  for n in alpha bravo; do
    [ -d "$LAB_DIR/$n/pg/data" ] && ip netns exec "lab-db-$n" runuser -u postgres -- \
      "$PG_BIN/pg_ctl" -D "$LAB_DIR/$n/pg/data" -m immediate stop > /dev/null 2>&1 || true
  done
  for n in alpha bravo; do
    ip netns del "lab-gw-$n" 2>/dev/null || true
    ip netns del "lab-db-$n" 2>/dev/null || true
  done
}
