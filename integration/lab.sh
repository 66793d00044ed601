# The integration lab, sourced by demo.sh and suite.sh inside sandbox.sh.
#
# Four VPN gateways, each in a namespace of its own, each fronting an
# internal network with the SAME subnet 10.20.0.0/16: a database host at the
# SAME address 10.20.1.5 runs PostgreSQL with data that names its side, and a
# dnsmasq on the gateway (10.20.0.53) answers db.internal for its side.
#
#   sandbox ("host") --203.0.113.0/30--> lab-gw-alpha   (wireguard-go)  --> lab-db-alpha
#                    --203.0.113.4/30--> lab-gw-bravo   (wireguard-go)  --> lab-db-bravo
#                    --203.0.113.8/30--> lab-gw-charlie (openvpn, UDP)  --> lab-db-charlie
#                    --203.0.113.12/30-> lab-gw-delta   (ocserv)        --> lab-db-delta
#                    --203.0.113.16/30-> lab-gw-echo    (strongSwan)    --> lab-db-echo
#
# The client profiles (in $LAB_DIR/profiles) all claim 10.20.0.0/16.
#
# Beside the gateways, "the internet": the sandbox's host has its own uplink
# and default route to the namespace lab-internet, which holds public
# services (documentation range 198.51.100.0/24) and the public DNS that the
# sandbox's /etc/resolv.conf names, as a real host's resolver would be:
#
#   sandbox ("host") lab-wan 198.51.100.1/30 --default--> lab-internet (198.51.100.2)
#     198.51.100.80   www.public.example: HTTP on 80 (/ is "public", /big.bin
#                     and /big.bin.sha256), TCP echo on 7, and on 13 a line
#                     sent only after the client's EOF (a half-close)
#     198.51.100.53   public DNS (dnsmasq): www.public.example -> .80, and
#                     db.internal (every *.internal) -> .66: the WRONG answer,
#                     so a VPN name that leaks to the host's DNS shows
#     198.51.100.66   the wrong db.internal: refuses every connection
# lab-internet does not forward: beyond its own addresses nothing answers.

LAB_DIR=${LAB_DIR:-/run/nsvpn-lab}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
LAB_GATEWAYS="alpha bravo charlie delta echo"
LAB_USER=alice
LAB_PASSWORD='correct horse battery staple'

lab_log() { echo "lab: $*" >&2; }

# The internet of the lab (see above).
LAB_INET_NS=lab-internet
LAB_INET_LINK=lab-wan               # the host's uplink
LAB_INET_HOST=198.51.100.1          # the host's address on it
LAB_INET_GW=198.51.100.2            # the host's default gateway
LAB_INET_WWW=198.51.100.80          # the public service
LAB_INET_DNS=198.51.100.53          # the public DNS, the host's resolver
LAB_INET_WRONG=198.51.100.66        # what the public DNS says db.internal is
LAB_INET_NAME=www.public.example
LAB_INET_HTTP_PORT=80 LAB_INET_ECHO_PORT=7 LAB_INET_EOF_PORT=13
LAB_INET_EOF_LINE="public: answered after your EOF"
LAB_INET_BIG_MIB=${LAB_INET_BIG_MIB:-16}

# lab_internet: the namespace lab-internet with its services and DNS, the
# host's uplink and default route to it, and (in the sandbox only) the
# host's /etc/resolv.conf naming the public DNS. The public DNS logs every
# query to $LAB_DIR/internet/dns.log (see lab_inet_asked).
lab_internet() {
  local d=$LAB_DIR/internet n=$LAB_INET_NS
  mkdir -p "$d/www"
  ip netns add "$n"
  ip -n "$n" link set lo up
  ip link add "$LAB_INET_LINK" type veth peer name wan0 netns "$n"
  ip addr add "$LAB_INET_HOST/30" dev "$LAB_INET_LINK"
  ip link set "$LAB_INET_LINK" up
  ip -n "$n" addr add "$LAB_INET_GW/30" dev wan0
  ip -n "$n" link set wan0 up
  local a
  for a in "$LAB_INET_WWW" "$LAB_INET_DNS" "$LAB_INET_WRONG"; do ip -n "$n" addr add "$a/32" dev lo; done
  ip route add default via "$LAB_INET_GW" dev "$LAB_INET_LINK"

  echo public > "$d/www/index.html"
  head -c "$((LAB_INET_BIG_MIB * 1024 * 1024))" /dev/urandom > "$d/www/big.bin"
  (cd "$d/www" && sha256sum big.bin > big.bin.sha256)
  ip netns exec "$n" busybox httpd -f -p "$LAB_INET_WWW:$LAB_INET_HTTP_PORT" -h "$d/www" &
  echo $! > "$d/httpd.pid"
  ip netns exec "$n" socat "TCP-LISTEN:$LAB_INET_ECHO_PORT,bind=$LAB_INET_WWW,reuseaddr,fork" EXEC:cat &
  echo $! > "$d/echo.pid"
  # Reads to the client's EOF, then answers one line and closes; -t: after
  # that EOF socat waits up to 10 s for the answer (its default is 0.5 s).
  ip netns exec "$n" socat -t 10 "TCP-LISTEN:$LAB_INET_EOF_PORT,bind=$LAB_INET_WWW,reuseaddr,fork" \
    SYSTEM:"cat > /dev/null; echo '$LAB_INET_EOF_LINE'" &
  echo $! > "$d/eof.pid"
  ip netns exec "$n" dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts \
    --bind-interfaces --listen-address="$LAB_INET_DNS" --pid-file= \
    --address="/$LAB_INET_NAME/$LAB_INET_WWW" --address="/internal/$LAB_INET_WRONG" \
    --log-queries --log-facility="$d/dns.log" &
  echo $! > "$d/dns.pid"
  if [ "$(findmnt -n -o SOURCE /etc)" = nsvpn-sandbox-etc ]; then
    # The sandbox's /etc is an overlay: this is the sandbox's resolv.conf
    # (a file of its own, also where the machine's is a symlink).
    cp -P --preserve=all /etc/resolv.conf "$d/resolv.conf.saved"
    rm -f /etc/resolv.conf
    echo "nameserver $LAB_INET_DNS" > /etc/resolv.conf
  fi
  local p
  for p in "$LAB_INET_HTTP_PORT" "$LAB_INET_ECHO_PORT" "$LAB_INET_EOF_PORT"; do
    for _ in $(seq 100); do ip netns exec "$n" ss -Hltn "sport = :$p" | grep -q . && break; sleep 0.05; done
  done
  for _ in $(seq 100); do ip netns exec "$n" ss -Hlun "sport = :53" | grep -q . && break; sleep 0.05; done
  lab_log "internet: $LAB_INET_NAME at $LAB_INET_WWW, DNS at $LAB_INET_DNS, the host's default route via $LAB_INET_GW"
}

# lab_inet_asked NAME: how many queries for NAME the public DNS has had.
lab_inet_asked() { grep -c "query\[[A-Z]*\] $1 from" "$LAB_DIR/internet/dns.log" 2>/dev/null; true; }

# lab_wan_saw FILTER COMMAND...: runs COMMAND while tcpdump captures on the
# internet's side of the host's uplink; prints how many packets matched
# FILTER.
lab_wan_saw() {
  local filter=$1 cap=$LAB_DIR/internet/wan.pcap log=$LAB_DIR/internet/tcpdump.log t; shift
  # The log exists before tcpdump starts: the wait below never reads a
  # file the background job has not made yet.
  : > "$log"
  ip netns exec "$LAB_INET_NS" tcpdump --immediate-mode -i wan0 -nn -U -Z root -w "$cap" "$filter" >> "$log" 2>&1 &
  t=$!
  for _ in $(seq 100); do grep -qs "listening on" "$log" && break; sleep 0.05; done
  "$@" > /dev/null 2>&1; sleep 0.3
  kill -INT "$t"; wait "$t" 2> /dev/null
  tcpdump -Z root -nn -r "$cap" 2> /dev/null | wc -l
  [ -n "${LAB_DEBUG:-}" ] && { cat "$log"; ls -la "$cap"; } >&2
  rm -f "$cap" "$log"
}

# lab_internet_down: stops the internet's servers and removes the namespace
# (with it the uplink and the default route).
lab_internet_down() {
  local f pid
  for f in "$LAB_DIR"/internet/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); kill "$pid" 2>/dev/null && { for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done; }
    rm -f "$f"
  done
  # Deleting the link at once (a namespace's veth goes a moment after it).
  ip link del "$LAB_INET_LINK" 2>/dev/null || true
  ip netns del "$LAB_INET_NS" 2>/dev/null || true
  if [ -e "$LAB_DIR/internet/resolv.conf.saved" ] || [ -L "$LAB_DIR/internet/resolv.conf.saved" ]; then
    rm -f /etc/resolv.conf
    mv "$LAB_DIR/internet/resolv.conf.saved" /etc/resolv.conf
  fi
}

# lab_gw_ip INDEX: the gateway's public address.
lab_gw_ip() { echo "203.0.113.$(($1 * 4 + 2))"; }

# lab_network NAME INDEX: the gateway namespace, its public link, the
# internal network with the database host's namespace, and dnsmasq.
lab_network() {
  local name=$1 i=$2
  local gw=lab-gw-$name db=lab-db-$name
  local up_host=203.0.113.$((i * 4 + 1)) up_gw
  up_gw=$(lab_gw_ip "$i")
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

  # DNS for the internal network.
  ip netns exec "$gw" dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts \
    --bind-interfaces --listen-address=10.20.0.53 --pid-file= \
    --address=/db.internal/10.20.1.5 --address="/only-$name.internal/10.20.9.$i" \
    --log-facility="$d/dnsmasq.log" &
  mkdir -p "$LAB_DIR/profiles"
}

# lab_postgres NAME: PostgreSQL on the database host, with data that says
# which side it is.
lab_postgres() {
  local name=$1 d=$LAB_DIR/$1 db=lab-db-$1
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
}

# lab_internal NAME INDEX: the network, DNS and the database of a gateway.
lab_internal() { lab_network "$@"; lab_postgres "$1"; }

# lab_httpd NAME: a web server on the database host (busybox httpd) whose page
# says which side it is; for the VM, which has no PostgreSQL.
lab_httpd() {
  local d=$LAB_DIR/$1/www
  mkdir -p "$d"
  echo "$1" > "$d/index.html"
  ip netns exec "lab-db-$1" busybox httpd -p 10.20.1.5:80 -h "$d"
}

# lab_wireguard NAME INDEX [ipv6]: a WireGuard server and the client's
# wg-quick file. The server is wireguard-go, or the kernel's when
# LAB_WG=kernel. With "ipv6" the tunnel also carries fd99::/64 (the gateway is
# fd99::1, the client fd99::2).
lab_wireguard() {
  local name=$1 i=$2 wg=lgw$2 d=$LAB_DIR/$1 gw=lab-gw-$1 up_gw
  local allowed=10.99.0.2/32 address=10.99.0.2/32 routes="10.20.0.0/16, 10.99.0.0/24"
  if [ "${3:-}" = ipv6 ]; then
    allowed+=",fd99::2/128"; address+=", fd99::2/128"; routes+=", fd99::/64"
  fi
  up_gw=$(lab_gw_ip "$i")
  (umask 077; wg genkey > "$d/server.key"; wg genkey > "$d/client.key")
  wg pubkey < "$d/server.key" > "$d/server.pub"
  wg pubkey < "$d/client.key" > "$d/client.pub"
  if [ "${LAB_WG:-}" = kernel ]; then
    ip -n "$gw" link add "$wg" type wireguard
  else
    ip netns exec "$gw" setsid wireguard-go -f "$wg" > "$d/wireguard-go.log" 2>&1 &
    for _ in $(seq 200); do [ -S "/run/wireguard/$wg.sock" ] && break; sleep 0.02; done
  fi
  ip netns exec "$gw" wg set "$wg" private-key "$d/server.key" listen-port 51820 \
    peer "$(cat "$d/client.pub")" allowed-ips "$allowed"
  ip -n "$gw" addr add 10.99.0.1/24 dev "$wg"
  [ "${3:-}" = ipv6 ] && ip -n "$gw" addr add fd99::1/64 dev "$wg" nodad
  ip -n "$gw" link set "$wg" up
  (umask 077; cat > "$LAB_DIR/profiles/$name.conf") <<CONF
# Client side of the lab gateway $name.
[Interface]
PrivateKey = $(cat "$d/client.key")
Address = $address
DNS = 10.20.0.53, internal

[Peer]
PublicKey = $(cat "$d/server.pub")
Endpoint = $up_gw:51820
AllowedIPs = $routes
CONF
  lab_log "gateway $name: WireGuard (${LAB_WG:-wireguard-go}) at $up_gw:51820"
}

# lab_cert DIR NAME CN [EXT...]: an EC key and a certificate signed by DIR/ca.
lab_cert() {
  local d=$1 n=$2 cn=$3; shift 3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/$n.key" -out "$d/$n.csr" -subj "/CN=$cn" 2> /dev/null
  printf '%s\n' "$@" > "$d/$n.ext"
  openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/$n.crt" -days 30 -extfile "$d/$n.ext" 2> /dev/null
}

lab_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1/ca.key" -out "$1/ca.crt" -days 30 -subj "/CN=lab CA $2" 2> /dev/null
}

# lab_openvpn_server NAME: starts the OpenVPN server of gateway NAME.
lab_openvpn_server() {
  local d=$LAB_DIR/$1 n
  n=0; [ -f "$d/server.log" ] && n=$(wc -l < "$d/server.log")
  ip netns exec "lab-gw-$1" setsid openvpn --config "$d/server.conf" >> "$d/server.log" 2>&1 &
  echo $! > "$d/server.pid"
  for _ in $(seq 100); do tail -n +$((n + 1)) "$d/server.log" | grep -q "Initialization Sequence Completed" && break; sleep 0.05; done
}

# lab_stop_server NAME: stops the VPN server of gateway NAME and waits until it is gone.
lab_stop_server() {
  local pid; pid=$(cat "$LAB_DIR/$1/server.pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null; sleep 0.1
}

# lab_openvpn NAME INDEX: an OpenVPN server (certificates plus user name and
# password, routes and DNS pushed) and the client's unchanged .ovpn file.
lab_openvpn() {
  local name=$1 i=$2 d=$LAB_DIR/$1 up_gw
  up_gw=$(lab_gw_ip "$i")
  lab_ca "$d" "$name"
  lab_cert "$d" server "vpn.$name.lab" basicConstraints=CA:FALSE keyUsage=digitalSignature extendedKeyUsage=serverAuth
  lab_cert "$d" client "$LAB_USER" basicConstraints=CA:FALSE keyUsage=digitalSignature extendedKeyUsage=clientAuth
  printf '#!/bin/sh\n[ "$username" = "%s" ] && [ "$password" = "%s" ]\n' "$LAB_USER" "$LAB_PASSWORD" > "$d/check-password"
  chmod 755 "$d/check-password"
  cat > "$d/server.conf" <<CONF
dev tun
proto udp
local $up_gw
port 1194
topology subnet
server 10.8.0.0 255.255.255.0
ca $d/ca.crt
cert $d/server.crt
key $d/server.key
dh none
push "route 10.20.0.0 255.255.0.0"
push "dhcp-option DNS 10.20.0.53"
push "dhcp-option DOMAIN internal"
keepalive 2 10
explicit-exit-notify 1
duplicate-cn
script-security 3
auth-user-pass-verify $d/check-password via-env
verb 3
CONF
  lab_openvpn_server "$name"
  # What a provider hands out: a client file with the CA and the client's
  # certificate inline, and a user name and password to type.
  cat > "$LAB_DIR/profiles/$name.ovpn" <<CONF
# OpenVPN client file for the lab gateway $name, as a provider hands it out.
client
dev tun
proto udp
remote $up_gw 1194
nobind
remote-cert-tls server
verify-x509-name vpn.$name.lab name
auth-user-pass
verb 3
<ca>
$(cat "$d/ca.crt")
</ca>
<cert>
$(cat "$d/client.crt")
</cert>
<key>
$(cat "$d/client.key")
</key>
CONF
  (umask 077; printf '%s\n%s\n' "$LAB_USER" "$LAB_PASSWORD" > "$LAB_DIR/profiles/$name.auth")
  lab_log "gateway $name: OpenVPN at $up_gw:1194/udp"
}

# lab_ocserv_server NAME: (re)starts the ocserv of gateway NAME.
lab_ocserv_server() {
  local d=$LAB_DIR/$1
  ip netns exec "lab-gw-$1" setsid ocserv -f -c "$d/ocserv.conf" >> "$d/server.log" 2>&1 &
  echo $! > "$d/server.pid"
  for _ in $(seq 100); do ip netns exec "lab-gw-$1" ss -ltn 2>/dev/null | grep -q ':443 ' && break; sleep 0.05; done
}

# lab_ocserv NAME INDEX: an AnyConnect-style gateway (ocserv) with a password
# user, pushing a split-include route, DNS and a default domain.
lab_ocserv() {
  local name=$1 i=$2 d=$LAB_DIR/$1 up_gw
  up_gw=$(lab_gw_ip "$i")
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/server.key" -out "$d/server.crt" -days 30 -subj "/CN=$up_gw" \
    -addext "subjectAltName=IP:$up_gw" 2> /dev/null
  printf '%s\n%s\n' "$LAB_PASSWORD" "$LAB_PASSWORD" | ocpasswd -c "$d/passwd" "$LAB_USER"
  cat > "$d/ocserv.conf" <<CONF
auth = "plain[passwd=$d/passwd]"
listen-host = $up_gw
tcp-port = 443
udp-port = 443
run-as-user = nobody
run-as-group = nogroup
socket-file = $d/ocserv.sock
use-occtl = true
occtl-socket-file = $d/occtl.sock
server-cert = $d/server.crt
server-key = $d/server.key
device = vpns
ipv4-network = 10.9.0.0
ipv4-netmask = 255.255.255.0
dns = 10.20.0.53
default-domain = internal
route = 10.20.0.0/255.255.0.0
predictable-ips = true
use-utmp = false
pid-file = $d/ocserv.pid
max-clients = 16
keepalive = 32400
dpd = 2
mobile-dpd = 2
auth-timeout = 240
cookie-timeout = 300
isolate-workers = false
CONF
  lab_ocserv_server "$name"
  local pin
  pin=$(openssl x509 -in "$d/server.crt" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)
  echo "pin-sha256:$pin" > "$d/pin"
  (umask 077; printf '%s\n' "$LAB_PASSWORD" > "$LAB_DIR/profiles/$name.password")
  lab_log "gateway $name: ocserv at https://$up_gw (pin-sha256:$pin)"
}

# lab_ipsec_server NAME: (re)starts the strongSwan gateway of NAME (charon
# with kernel-libipsec: these machines have no kernel ESP) and loads its
# connections, pool and key with swanctl.
lab_ipsec_server() {
  local d=$LAB_DIR/$1
  # A stopped charon leaves its socket: the wait below is for the new one.
  rm -f "$d/charon.vici"
  ip netns exec "lab-gw-$1" env STRONGSWAN_CONF="$d/strongswan.conf" setsid /usr/lib/ipsec/charon >> "$d/server.log" 2>&1 &
  echo $! > "$d/server.pid"
  for _ in $(seq 200); do [ -S "$d/charon.vici" ] && break; sleep 0.05; done
  swanctl --load-all --noprompt --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" > "$d/swanctl.log" 2>&1
}

# lab_rsa_cert DIR NAME CN SAN CA: an RSA key (what charon signs with when
# its openssl plugin is missing) and a certificate for CN with the subjectAltName
# SAN, signed by DIR/CA.crt.
lab_rsa_cert() {
  local d=$1 n=$2 cn=$3 san=$4 ca=$5
  openssl req -newkey rsa:2048 -nodes -keyout "$d/$n.key" -out "$d/$n.csr" -subj "/CN=$cn" 2> /dev/null
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\n' "$san" > "$d/$n.ext"
  openssl x509 -req -in "$d/$n.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial \
    -out "$d/$n.crt" -days 30 -extfile "$d/$n.ext" 2> /dev/null
}

# lab_ipsec NAME INDEX: an IKEv2 gateway (strongSwan) handing out virtual IPs
# from 10.7.0.0/24 and DNS in its configuration payload, fronting
# 10.20.0.0/16, with one connection per way to authenticate, chosen by the
# client's identity:
#   rw        alice@lab, a pre-shared key
#   rw-cert   carol@lab, a certificate from the CA ipsec-ca (the gateway's
#             certificate, echo.lab, from the same CA)
#   rw-eap    any other identity, EAP-MD5 (dave, LAB_PASSWORD); the gateway
#             proves itself with its certificate
#   rw-ecdsa  frank@lab, an ECDSA (P-256) certificate from ipsec-ca
#   rw-mschap erin, EAP-MSCHAPv2 (LAB_PASSWORD)
#   rw-file   grace@lab, a pre-shared key (for swanctl.conf-style profiles)
#   rw-rekey  rekey@lab, a pre-shared key, and its CHILD_SA rekeyed every 4 s,
#             its IKE_SA every 8 s
# Also a CA the gateway does not trust (rogue-ca), with a certificate for
# carol@lab. The client's files are in $LAB_DIR/profiles.
lab_ipsec() {
  local name=$1 i=$2 d=$LAB_DIR/$1 up_gw c
  up_gw=$(lab_gw_ip "$i")
  for c in ipsec-ca rogue-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/$c.key" -out "$d/$c.crt" -days 30 \
      -subj "/CN=lab $c $name" 2> /dev/null
  done
  lab_rsa_cert "$d" gw "$name.lab" "DNS:$name.lab" ipsec-ca
  lab_rsa_cert "$d" carol "carol@lab" "email:carol@lab" ipsec-ca
  lab_rsa_cert "$d" rogue "carol@lab" "email:carol@lab" rogue-ca
  # frank@lab's key is ECDSA (P-256): charon signs and verifies with it
  # through its openssl plugin (libstrongswan-standard-plugins).
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/frank.key" \
    -out "$d/frank.csr" -subj "/CN=frank@lab" 2> /dev/null
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=email:frank@lab\n' > "$d/frank.ext"
  openssl x509 -req -in "$d/frank.csr" -CA "$d/ipsec-ca.crt" -CAkey "$d/ipsec-ca.key" -CAcreateserial \
    -out "$d/frank.crt" -days 30 -extfile "$d/frank.ext" 2> /dev/null
  # swanctl --load-all loads private keys from the private/ folder beside
  # its swanctl.conf.
  mkdir -p "$d/private"; cp "$d/gw.key" "$d/private/gw.key"
  cat > "$d/strongswan.conf" <<CONF
charon {
  load_modular = no
  load = random nonce kdf aes sha1 sha2 md5 hmac gmp openssl pem pkcs1 pkcs8 x509 pubkey kernel-libipsec kernel-netlink socket-default vici attr eap-identity eap-md5 eap-mschapv2
  retransmit_tries = 2
  plugins {
    vici {
      socket = unix://$d/charon.vici
    }
  }
  filelog {
    gw {
      path = $d/charon.log
      time_format = %T
      default = 1
      # Each line written as it is logged: the suite reads this log.
      flush_line = yes
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
}
CONF
  cat > "$d/swanctl.conf" <<CONF
connections {
  rw {
    version = 2
    local_addrs = $up_gw
    pools = clients
    proposals = default
    dpd_delay = 10s
    local {
      auth = psk
      id = $name.lab
    }
    remote {
      auth = psk
      id = $LAB_USER@lab
    }
    children {
      net {
        local_ts = 10.20.0.0/16
        esp_proposals = default
      }
    }
  }
  rw-cert {
    version = 2
    local_addrs = $up_gw
    pools = clients
    dpd_delay = 10s
    local {
      auth = pubkey
      certs = $d/gw.crt
      id = $name.lab
    }
    remote {
      auth = pubkey
      cacerts = $d/ipsec-ca.crt
      id = carol@lab
    }
    children {
      net {
        local_ts = 10.20.0.0/16
        esp_proposals = default
      }
    }
  }
  rw-eap {
    version = 2
    local_addrs = $up_gw
    pools = clients
    dpd_delay = 10s
    local {
      auth = pubkey
      certs = $d/gw.crt
      id = $name.lab
    }
    remote {
      auth = eap-md5
      eap_id = %any
    }
    children {
      net {
        local_ts = 10.20.0.0/16
        esp_proposals = default
      }
    }
  }
  rw-ecdsa {
    version = 2
    local_addrs = $up_gw
    pools = clients
    dpd_delay = 10s
    local {
      auth = pubkey
      certs = $d/gw.crt
      id = $name.lab
    }
    remote {
      auth = pubkey
      cacerts = $d/ipsec-ca.crt
      id = frank@lab
    }
    children {
      net {
        local_ts = 10.20.0.0/16
        esp_proposals = default
      }
    }
  }
  rw-mschap {
    version = 2
    local_addrs = $up_gw
    pools = clients
    dpd_delay = 10s
    local {
      auth = pubkey
      certs = $d/gw.crt
      id = $name.lab
    }
    remote {
      auth = eap-mschapv2
      id = erin
      eap_id = %any
    }
    children {
      net {
        local_ts = 10.20.0.0/16
        esp_proposals = default
      }
    }
  }
  rw-file {
    version = 2
    local_addrs = $up_gw
    pools = clients
    dpd_delay = 10s
    local {
      auth = psk
      id = $name.lab
    }
    remote {
      auth = psk
      id = grace@lab
    }
    children {
      net {
        local_ts = 10.20.0.0/16
        esp_proposals = default
      }
    }
  }
  rw-rekey {
    version = 2
    local_addrs = $up_gw
    pools = clients
    rekey_time = 8s
    over_time = 30s
    rand_time = 1s
    local {
      auth = psk
      id = $name.lab
    }
    remote {
      auth = psk
      id = rekey@lab
    }
    children {
      net {
        local_ts = 10.20.0.0/16
        esp_proposals = default
        rekey_time = 4s
        life_time = 30s
        rand_time = 1s
      }
    }
  }
}
pools {
  clients {
    addrs = 10.7.0.0/24
    dns = 10.20.0.53
  }
}
secrets {
  ike-alice {
    id-1 = $LAB_USER@lab
    id-2 = $name.lab
    secret = "$LAB_PASSWORD"
  }
  ike-rekey {
    id-1 = rekey@lab
    id-2 = $name.lab
    secret = "$LAB_PASSWORD"
  }
  ike-grace {
    id-1 = grace@lab
    id-2 = $name.lab
    secret = "$LAB_PASSWORD"
  }
  eap-dave {
    id = dave
    secret = "$LAB_PASSWORD"
  }
  eap-erin {
    id = erin
    secret = "$LAB_PASSWORD"
  }
}
CONF
  chmod 600 "$d/swanctl.conf"
  lab_ipsec_server "$name"
  local p=$LAB_DIR/profiles
  (umask 077
   printf '%s\n' "$LAB_PASSWORD" > "$p/$name.psk"
   printf '%s\n' "$LAB_PASSWORD" > "$p/$name.password"
   cp "$d/carol.key" "$p/$name-carol.key"; cp "$d/rogue.key" "$p/$name-rogue.key"
   cp "$d/frank.key" "$p/$name-frank.key")
  cp "$d/carol.crt" "$p/$name-carol.crt"; cp "$d/rogue.crt" "$p/$name-rogue.crt"
  cp "$d/frank.crt" "$p/$name-frank.crt"
  cp "$d/ipsec-ca.crt" "$p/$name-ca.crt"; cp "$d/rogue-ca.crt" "$p/$name-rogue-ca.crt"
  lab_log "gateway $name: strongSwan (IKEv2: PSK, RSA and ECDSA certificates, EAP-MD5, EAP-MSCHAPv2) at $up_gw"
}

lab_up() {
  mkdir -p "$LAB_DIR"
  lab_internet
  lab_internal alpha 0; lab_wireguard alpha 0
  lab_internal bravo 1; lab_wireguard bravo 1 ipv6
  lab_internal charlie 2; lab_openvpn charlie 2
  lab_internal delta 3; lab_ocserv delta 3
  lab_internal echo 4; lab_ipsec echo 4
  cat > "$LAB_DIR/profiles/alpha.toml" <<'TOML'
description = "lab gateway alpha (WireGuard, 10.20.0.0/16)"
[vpn]
kind = "wireguard"
config = "alpha.conf"
TOML
  cat > "$LAB_DIR/profiles/bravo.toml" <<'TOML'
description = "lab gateway bravo (WireGuard, 10.20.0.0/16 too)"
[vpn]
kind = "wireguard"
config = "bravo.conf"
userspace = true
[hosts]
"gateway.bravo" = "10.20.0.1"
TOML
  cat > "$LAB_DIR/profiles/charlie.toml" <<'TOML'
description = "lab gateway charlie (OpenVPN, 10.20.0.0/16 too)"
[vpn]
kind = "openvpn"
config = "charlie.ovpn"
auth_file = "charlie.auth"
TOML
  cat > "$LAB_DIR/profiles/delta.toml" <<TOML
description = "lab gateway delta (OpenConnect to ocserv, 10.20.0.0/16 too)"
[vpn]
kind = "openconnect"
server = "https://$(lab_gw_ip 3)"
user = "$LAB_USER"
password_file = "delta.password"
args = ["--servercert", "$(cat "$LAB_DIR/delta/pin")"]
TOML
  cat > "$LAB_DIR/profiles/echo.toml" <<TOML
description = "lab gateway echo (IPsec/IKEv2 to strongSwan, 10.20.0.0/16 too)"
[vpn]
kind = "ipsec"
server = "$(lab_gw_ip 4)"
local_id = "$LAB_USER@lab"
remote_id = "echo.lab"
psk_file = "echo.psk"
TOML
  export NSVPN_PROFILES=$LAB_DIR/profiles
  # In the sandbox, /etc is an overlay of its own: the lab's profiles are
  # also in the default directory, where nsvpn looks for a sudo user.
  if [ "$(findmnt -n -o SOURCE /etc)" = nsvpn-sandbox-etc ]; then
    # (Where the package is installed, its empty directory is replaced: in
    # the overlay only.)
    mkdir -p /etc/nsvpn
    rm -rf /etc/nsvpn/profiles
    ln -s "$LAB_DIR/profiles" /etc/nsvpn/profiles
  fi
}

# Stops the lab's servers (the sandbox's PID namespace ends the rest).
lab_down() {
  for n in $LAB_GATEWAYS; do
    [ -d "$LAB_DIR/$n/pg/data" ] && ip netns exec "lab-db-$n" runuser -u postgres -- \
      "$PG_BIN/pg_ctl" -D "$LAB_DIR/$n/pg/data" -m immediate stop > /dev/null 2>&1 || true
  done
  for n in $LAB_GATEWAYS; do
    ip netns del "lab-gw-$n" 2>/dev/null || true
    ip netns del "lab-db-$n" 2>/dev/null || true
  done
  lab_internet_down
}
