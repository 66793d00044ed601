# The security checks of the integration suite, sourced by suite.sh while
# alpha and bravo are up: who may use which profile (sudo, and a real
# unprivileged user with the file-capability binary), which profiles nsvpn
# trusts, and what the command inherits. The users and /etc/nsvpn live in the
# sandbox's own /etc (an overlay), never on the real machine.


echo "# sudo: the command gets a clean environment"
expect "sudo's variables, loader variables and NSVPN_PROFILES do not reach the command" "" \
  as_user env SUDO_COMMAND=/bin/sh LD_LIBRARY_PATH=/nonexistent NSVPN_PROFILES=$LAB_DIR/profiles MAIL=/var/mail/root BASH_ENV=/tmp/x \
  nsvpn exec alpha -- sh -c 'env | grep -E "^(SUDO_|LD_|NSVPN_PROFILES=|MAIL=|BASH_ENV=)"'
expect "the user's terminal and locale do" "xterm C.UTF-8 alpha" \
  as_user env TERM=xterm LC_ALL=C.UTF-8 nsvpn exec alpha -- sh -c 'echo $TERM $LC_ALL $NSVPN_PROFILE'

echo "# sudo: nsvpn reads only root's profiles for a user"
as_user nsvpn --profiles /nonexistent exec alpha -- true > /tmp/out 2>&1
grep -q "ignored when nsvpn acts for nobody (not root); using /etc/nsvpn/profiles" /tmp/out && ok "--profiles from a sudo user is ignored, and it says so" || { fail "--profiles from a sudo user is ignored, and it says so"; cat /tmp/out; }
cp "$LAB_DIR/profiles/alpha.toml" "$LAB_DIR/profiles/weak.toml"; chmod 664 "$LAB_DIR/profiles/weak.toml"
status_is "a group-writable profile is refused for a sudo user" 125 as_user nsvpn exec weak -- true
grep -q 'profile "weak": .*/weak.toml cannot be trusted: the file is writable by its group (mode 0664)' /tmp/out && ok "... naming the file and the rule" || { fail "... naming the file and the rule"; cat /tmp/out; }
cp "$LAB_DIR/profiles/alpha.conf" "$LAB_DIR/profiles/weak.conf"; chown 65534 "$LAB_DIR/profiles/weak.conf"
printf '[vpn]\nkind = "wireguard"\nconfig = "weak.conf"\n' > "$LAB_DIR/profiles/weak.toml"; chmod 644 "$LAB_DIR/profiles/weak.toml"
status_is "a wg-quick file the user owns is refused" 125 as_user nsvpn exec weak -- true
grep -q 'field `vpn.config`: .*weak.conf cannot be trusted: the file is owned by uid 65534, not root' /tmp/out && ok "... naming the field" || { fail "... naming the field"; cat /tmp/out; }
expect "nothing of weak was created" "" bash -c "ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep weak; ip -br link | grep weak"
rm -f "$LAB_DIR"/profiles/weak.*

echo "# sudo: a config in the user's home is copied into root's tree (never: make the home root's)"
mkdir -p /run/home && useradd -M -d /run/home/dora -s /bin/sh -U dora
mkdir -p /run/home/dora/Downloads
# A fresh key and an endpoint that never answers: once the file is trusted,
# up gets as far as the handshake, and that is all this needs to show.
printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.9/32\n[Peer]\nPublicKey = %s\nEndpoint = 203.0.113.2:51999\nAllowedIPs = 10.20.0.0/16\n' \
  "$(wg genkey)" "$(cat "$LAB_DIR/alpha/server.pub")" > /run/home/dora/Downloads/home.conf
chown -R dora: /run/home/dora; chmod 700 /run/home/dora
printf '[vpn]\nkind = "wireguard"\nconfig = "/run/home/dora/Downloads/home.conf"\n' > "$LAB_DIR/profiles/home.toml"
as_dora() { SUDO_UID=$(id -u dora) SUDO_GID=$(id -g dora) SUDO_USER=dora "$@"; }
status_is "dora's up of a profile whose config is in her ~/Downloads is refused" 1 as_dora nsvpn up home --timeout 1
grep -q "home.conf cannot be trusted: it is in /run/home/dora/Downloads, a directory of dora (uid $(id -u dora)), not root's" /tmp/out \
  && ok "... naming the directory and whose it is" || { fail "... naming the directory and whose it is"; cat /tmp/out; }
grep -qF 'copy the file into root'"'"'s tree: sudo install -D -o root -g root -m 600 /run/home/dora/Downloads/home.conf /etc/nsvpn/home.conf, then set `config = "/etc/nsvpn/home.conf"` under [vpn] in /etc/nsvpn/profiles/home.toml' /tmp/out \
  && ! grep -q "chown\|chmod" /tmp/out && ok "... saying to copy it under /etc/nsvpn and which line to change, and no chown/chmod" || { fail "... saying to copy it under /etc/nsvpn and which line to change, and no chown/chmod"; cat /tmp/out; }
# Follow the advice to the letter (we are root already: no sudo).
advice=$(grep -o 'sudo install [^,]*' /tmp/out | sed 's/^sudo //')
$advice
sed -i 's|^config = .*|config = "/etc/nsvpn/home.conf"|' "$LAB_DIR/profiles/home.toml"
expect "the copy is root's, mode 0600; dora's home is still hers" "0:0 600 dora" \
  bash -c 'echo $(stat -c "%u:%g %a" /etc/nsvpn/home.conf) $(stat -c %U /run/home/dora)'
status_is "after the advice, dora's up gets past the trust check" 1 as_dora nsvpn up home --timeout 1
grep -q "no WireGuard handshake after 1.0 s" /tmp/out && ! grep -q "cannot be trusted" /tmp/out \
  && ok "... to the handshake (the endpoint never answers)" || { fail "... to the handshake (the endpoint never answers)"; cat /tmp/out; }
rm -f "$LAB_DIR/profiles/home.toml" /etc/nsvpn/home.conf
userdel dora; groupdel dora 2>/dev/null; rm -rf /run/home
expect "nothing of home was left" "" bash -c "ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep -x -e nsvpn-home -e home; ip -br link | grep -- '-home'"

echo "# file-capability mode: real users, no sudo"
groupadd consultants
useradd -M -s /bin/sh -U alice
useradd -M -s /bin/sh -U -G consultants carol
useradd -M -s /bin/sh -U mallory
mkdir -p /run/filecap && install -m 0755 "$(command -v nsvpn)" /run/filecap/nsvpn
# What the command itself sees of its identity and powers.
printf '#!/bin/sh\ngrep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs)" /proc/self/status | tr -s "\\t " " " | sed "s/ $//"\n' > /run/filecap/proc-status
chmod 755 /run/filecap/proc-status
caps=cap_net_admin,cap_sys_admin
setcap $caps+ep /run/filecap/nsvpn
install -m 0755 "$(command -v nsvpn)" /run/filecap/nsvpn-plain
printf '[access]\nusers = ["alice"]\ngroups = ["consultants"]\n' >> "$LAB_DIR/profiles/alpha.toml"
run_as() { local u=$1; shift; env -i PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }
export -f run_as
fc() { local u=$1; shift; run_as "$u" /run/filecap/nsvpn "$@"; }
listed() { fc "$1" list | awk 'NR>1{print $1}'; }
expect "alice (admitted by name) runs as herself: uid, gid, groups; no capability; no_new_privs" \
  "Uid: $(id -u alice) $(id -u alice) $(id -u alice) $(id -u alice)
Gid: $(id -g alice) $(id -g alice) $(id -g alice) $(id -g alice)
Groups: $(id -g alice)
CapInh: 0000000000000000
CapPrm: 0000000000000000
CapEff: 0000000000000000
CapAmb: 0000000000000000
NoNewPrivs: 1" fc alice exec alpha -- /run/filecap/proc-status
expect "alice's command reaches alpha's database" alpha fc alice exec alpha -- psql -h db.internal -U lab -d lab -Atc "select name from side"
expect "alice's command sees alpha's resolv.conf" "nameserver 10.20.0.53" fc alice exec alpha -- grep ^nameserver /etc/resolv.conf
expect "carol (admitted by group) gets her groups" "$(id -u carol) $(id -G carol)" fc carol exec alpha -- sh -c 'echo $(id -u) $(id -G)'
status_is "mallory is refused (125)" 125 fc mallory exec alpha -- true
grep -q "mallory may not run commands in profile alpha: \[access\] admits users alice and groups consultants; mallory is neither" /tmp/out && ok "... with the rule that refused" || { fail "... with the rule that refused"; cat /tmp/out; }
status_is "alice may not enter bravo, which has no [access]" 125 fc alice exec bravo -- true
grep -q "the profile has no \[access\] section, so only root may use it" /tmp/out && ok "... and is told why" || { fail "... and is told why"; cat /tmp/out; }
expect "alice's list shows only alpha" "alpha" listed alice
check "alice may see alpha's status" fc alice status alpha
status_is "mallory may not see alpha's status" 1 fc mallory status alpha
status_is "with only $caps, alice's up is refused" 1 fc alice up alpha
grep -q "alice may use profile alpha, but \`up\` without sudo needs the binary to carry cap_setuid and cap_setgid as well" /tmp/out && ok "... saying which capabilities it lacks, and the sudo command" || { fail "... saying which capabilities it lacks, and the sudo command"; cat /tmp/out; }

echo "# file-capability mode with cap_setuid,cap_setgid: admitted users run up and down"
install -m 0755 "$(command -v nsvpn)" /run/filecap/nsvpn-up
setcap cap_net_admin,cap_sys_admin,cap_setuid,cap_setgid+ep /run/filecap/nsvpn-up
fcu() { local u=$1; shift; run_as "$u" /run/filecap/nsvpn-up "$@"; }
# A hostile environment: the user's PATH offers a fake client, the loader a
# library; neither may run as root.
mkdir -p /run/filecap/evil
printf '#!/bin/sh\ntouch /run/pwned-path\n' > /run/filecap/evil/wireguard-go
printf '#!/bin/sh\ntouch /run/pwned-path\n' > /run/filecap/evil/openvpn
chmod 755 /run/filecap/evil/*
evil() { local u=$1; shift; env -i PATH=/run/filecap/evil:/usr/bin:/bin LD_PRELOAD=/run/filecap/evil/none.so TERM=dumb setpriv --reuid="$u" --regid="$u" --init-groups -- /run/filecap/nsvpn-up "$@"; }
status_is "mallory may not take alpha down" 1 fcu mallory down alpha
grep -q "mallory may not take down profile alpha: \[access\] admits users alice and groups consultants" /tmp/out && ok "... with the rule that refused" || { fail "... with the rule that refused"; cat /tmp/out; }
check "alice takes alpha down" fcu alice down alpha
expect "... and nothing of alpha is left" "" bash -c "ls /run/netns /etc/netns /run/nsvpn 2>/dev/null | grep -x -e nsvpn-alpha -e alpha; ip -br link | grep -- '-alpha'; pgrep -af 'nsvt-alpha'"
status_is "mallory may not bring alpha up" 1 fcu mallory up alpha
check "alice brings alpha up, with a hostile PATH and LD_PRELOAD" evil alice up alpha
expect "... the user's PATH chose no program root ran" "" bash -c "ls /run/pwned-path 2>/dev/null"
expect "the namespace, its files and the state belong to root" "0:0 0:0 0:0 0:0" bash -c "stat -c %u:%g /run/netns/nsvpn-alpha /etc/netns/nsvpn-alpha /etc/netns/nsvpn-alpha/resolv.conf /run/nsvpn/alpha | tr '\n' ' ' | sed 's/ \$//'"
cpid=$(nsvpn status alpha --json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("pid") or "")')
if [ -n "$cpid" ]; then
  expect "the VPN client runs as root, not as alice" "0 0" bash -c "ps -o ruid=,euid= -p $cpid | tr -s ' ' | sed 's/^ //'"
  status_is "alice cannot read the client's environment or memory" 1 run_as alice cat /proc/$cpid/environ
  status_is "alice cannot open wireguard-go's UAPI socket (the private key)" 1 run_as alice python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect("/var/run/wireguard/nsvt-alpha.sock")'
fi
expect "alice's command after her own up is still only alice" "Uid: $(id -u alice) $(id -u alice) $(id -u alice) $(id -u alice)
CapPrm: 0000000000000000
CapEff: 0000000000000000
NoNewPrivs: 1" bash -c "run_as alice /run/filecap/nsvpn-up exec alpha -- /run/filecap/proc-status | grep -E '^(Uid|CapPrm|CapEff|NoNewPrivs)'"
check "alice takes alpha down again" fcu alice down alpha
expect "exec of the down profile brings it up, and the command still runs as alice" "$(id -u alice) 0000000000000000 alpha" \
  bash -c "run_as alice /run/filecap/nsvpn-up exec alpha -- sh -c 'echo \$(id -u) \$(grep ^CapEff /proc/self/status | cut -f2) \$(psql -h db.internal -U lab -d lab -Atc \"select name from side\")' 2>/dev/null"
expect "the user's own environment still reaches that command" "dumb" bash -c "run_as alice /run/filecap/nsvpn-up exec alpha -- sh -c 'echo \$TERM'"
status_is "alice's --profiles is ignored: her own profile dir is not read" 125 fc alice --profiles /tmp exec mine -- true
status_is "without file capabilities a user is told to use sudo" 1 run_as alice /run/filecap/nsvpn-plain list
grep -q "nsvpn needs root: run it with sudo, or have an administrator give the binary file capabilities" /tmp/out && ok "... and how to set them up" || { fail "... and how to set them up"; cat /tmp/out; }

echo "# file-capability mode with real permissions: configs and secrets root's alone, in root-only directories"
# One profile of each kind, its files laid out as on a real install: the
# wg-quick file in /etc/wireguard (root, 0700), the .ovpn and its key and
# auth file in a root 0700 directory, the OpenConnect password file root's,
# 0600 (in a root 0700 directory too). Admitted users read only the profile
# file ([access]); whatever needs the VPN's files happens as root (up, also
# exec's own up, with cap_setuid,cap_setgid) or is refused. They copy alpha,
# charlie and delta (same gateways, keys and passwords): alpha goes down
# meanwhile (its gateway knows its key once), charlie and delta are down.
check "down alpha (permwg takes its key)" nsvpn down alpha
wgdir=/etc/wireguard ovdir=/etc/nsvpn/permovpn secdir=/etc/nsvpn/perm-secrets
wgdir_mode=$(stat -c %a "$wgdir" 2>/dev/null || echo none)   # the sandbox's /etc is the machine's, overlaid
mkdir -p "$wgdir" "$ovdir" "$secdir"; chown root:root "$wgdir" "$ovdir" "$secdir"; chmod 700 "$wgdir" "$ovdir" "$secdir"
install -o root -g root -m 600 "$LAB_DIR/profiles/alpha.conf" "$wgdir/permwg.conf"
# The .ovpn follows charlie's server as it is now (the clients' checks leave
# it on TCP).
ovpn_proto=udp; grep -q '^proto tcp-server' "$LAB_DIR/charlie/server.conf" && ovpn_proto=tcp-client
(umask 077
 awk -v key="$ovdir/permovpn.key" '/^<key>$/ {k=1; next} /^<\/key>$/ {k=0; print "key permovpn.key"; next} k {print > key; next} {print}' \
   "$LAB_DIR/profiles/charlie.ovpn" | sed "s/^proto udp\$/proto $ovpn_proto/" > "$ovdir/permovpn.ovpn"
 cp "$LAB_DIR/profiles/charlie.auth" "$ovdir/permovpn.auth"
 cp "$LAB_DIR/profiles/delta.password" "$secdir/permoc.password")
chmod 600 "$ovdir"/* "$secdir"/*
printf '[vpn]\nkind = "wireguard"\nconfig = "%s/permwg.conf"\n[access]\nusers = ["alice"]\n' "$wgdir" > "$LAB_DIR/profiles/permwg.toml"
printf '[vpn]\nkind = "openvpn"\nconfig = "%s/permovpn.ovpn"\nauth_file = "%s/permovpn.auth"\n[access]\nusers = ["alice"]\n' "$ovdir" "$ovdir" > "$LAB_DIR/profiles/permovpn.toml"
sed -e '/^description/d' -e "s|^password_file = .*|password_file = \"$secdir/permoc.password\"|" "$LAB_DIR/profiles/delta.toml" > "$LAB_DIR/profiles/permoc.toml"
printf '[access]\nusers = ["alice"]\n' >> "$LAB_DIR/profiles/permoc.toml"
chmod 644 "$LAB_DIR"/profiles/perm*.toml
perm_files="$wgdir/permwg.conf $ovdir/permovpn.ovpn $ovdir/permovpn.key $ovdir/permovpn.auth $secdir/permoc.password"
expect "the files are root's, 0600, in root's 0700 directories" "$(for _ in 1 2 3; do echo 'root 700'; done; for _ in 1 2 3 4 5; do echo 'root 600'; done)" \
  bash -c "stat -c '%U %a' $wgdir $ovdir $secdir $perm_files"
expect "control: alice can read none of them, nor list the directories" "" \
  bash -c "for f in $wgdir $ovdir $secdir $perm_files; do run_as alice sh -c \"ls \$f || cat \$f\" > /dev/null 2>&1 && echo \"alice reads \$f\"; done"
# Whatever alice and mallory are shown (each command's output and errors)
# must name none of these files, directories or fields.
perm_seen=/run/perm-seen.out; : > "$perm_seen"
seen() { "$@" 2>&1 | tee -a "$perm_seen"; return "${PIPESTATUS[0]}"; }
perm_status_is() { local d=$1 want=$2; shift 2; status_is "$d" "$want" "$@"; cat /tmp/out >> "$perm_seen"; }
state_of() { fc "$1" status "$2" --json 2>> "$perm_seen" | tee -a "$perm_seen" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
listed_state() { fc "$1" list 2>&1 | tee -a "$perm_seen" | awk -v p="$2" '$1 == p {print $3}'; }
side_sql='select name from side'
export -f state_of listed_state fc; export perm_seen

echo "# ... while down: alice sees them down; exec without cap_setuid is refused for the right reason"
expect "alice's status and list say permwg is down (not a Permission denied on its config)" "down down" \
  bash -c "echo \$(state_of alice permwg) \$(listed_state alice permwg)"
perm_status_is "alice's exec of the down permovpn, with only $caps, is refused (125)" 125 fc alice exec permovpn -- true
grep -q "profile permovpn is down: alice may use profile permovpn, but \`up\` without sudo needs the binary to carry cap_setuid and cap_setgid" /tmp/out \
  && ok "... because up needs cap_setuid,cap_setgid, not because of the files" || { fail "... because up needs cap_setuid,cap_setgid, not because of the files"; cat /tmp/out; }

echo "# ... brought up as root: by exec's own up (files read after nsvpn became root), by alice's up, by root"
expect "alice's exec of the down permwg brings it up (cap_setuid,cap_setgid) and reaches alpha's database" alpha \
  bash -c "run_as alice /run/filecap/nsvpn-up exec permwg -- psql -h db.internal -U lab -d lab -Atc '$side_sql' 2>/run/perm-up.err"
grep -q "nsvpn: profile permwg is down; bringing it up" /run/perm-up.err && ok "... having said it brings it up" || { fail "... having said it brings it up"; cat /run/perm-up.err; }
check "alice brings permovpn up (cap_setuid,cap_setgid)" fcu alice up permovpn
check "root brings permoc up" nsvpn up permoc

for kp in permwg:alpha:15471 permovpn:charlie:15472 permoc:delta:15473; do
  IFS=: read -r p side port <<< "$kp"
  echo "# ... $p up: alice (admitted) uses it with $caps only"
  expect "$p: alice's exec reaches $side's database" "$side" seen fc alice exec "$p" -- psql -h db.internal -U lab -d lab -Atc "$side_sql"
  expect "$p: alice's exec runs as alice, with no capability" "$(id -u alice) 0000000000000000" \
    seen fc alice exec "$p" -- sh -c 'echo $(id -u) $(grep ^CapEff /proc/self/status | cut -f2)'
  expect "$p: alice's shell runs inside" "$side $p" \
    bash -c "echo 'echo \$(psql -h db.internal -U lab -d lab -Atc \"$side_sql\") \$NSVPN_PROFILE' | fc alice shell $p 2>&1 | tee -a $perm_seen"
  expect "$p: alice's status says up" "profile $p: up" bash -c "fc alice status $p 2>&1 | tee -a $perm_seen | head -n 1"
  expect "$p: alice's status --json and list say up" "up up" bash -c "echo \$(state_of alice $p) \$(listed_state alice $p)"
  env -i --default-signal=INT PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb setpriv --reuid=alice --regid=alice --init-groups -- \
    /run/filecap/nsvpn forward "$p" "$port:db.internal:5432" > "/run/perm-fwd.out" 2>&1 &
  fpid=$!
  for _ in $(seq 100); do grep -q "forwarding" /run/perm-fwd.out && break; kill -0 "$fpid" 2>/dev/null || break; sleep 0.05; done
  expect "$p: alice's forward on 127.0.0.1:$port reaches $side's database from the host" "$side" psql -h 127.0.0.1 -p "$port" -U lab -d lab -Atc "$side_sql"
  kill -INT "$fpid" 2>/dev/null; wait "$fpid"; rc=$?
  [ "$rc" = 130 ] && ok "$p: ... and SIGINT ends alice's forward with status 130" || { fail "$p: ... and SIGINT ends alice's forward with status 130 (exit $rc)"; cat /run/perm-fwd.out; }
  cat /run/perm-fwd.out >> "$perm_seen"

  echo "# ... $p up: mallory (not admitted) is refused each, with the [access] rule"
  rule="[access] admits users alice and groups nobody; mallory is neither"
  for c in "exec:125:run commands in:exec $p -- true" "shell:125:run commands in:shell $p" "status:1:see the status of:status $p" \
           "status --json:1:see the status of:status $p --json" "forward:1:forward ports into:forward $p 15479:db.internal:5432"; do
    IFS=: read -r what code action args <<< "$c"
    # shellcheck disable=SC2086
    perm_status_is "$p: mallory's $what is refused ($code)" "$code" fc mallory $args
    grep -qF "mallory may not $action profile $p: $rule" /tmp/out && ok "$p: ... naming the rule" || { fail "$p: ... naming the rule"; cat /tmp/out; }
  done
  expect "$p: mallory's list does not show it" "" listed_state mallory "$p"
  perm_status_is "$p: mallory may not take it down (cap_setuid,cap_setgid)" 1 fcu mallory down "$p"
done
if [ "$(nsvpn status permwg --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["implementation"])')" = userspace ]; then
  expect "permwg: alice's status says it cannot ask wireguard-go for the peers (its socket is root's), and who can" \
    "  problem: nsvpn cannot ask the tunnel for its peers as this user: its socket is root's alone (it holds the private key); \`sudo nsvpn status permwg\` shows them" \
    bash -c "fc alice status permwg | grep peers"
else   # kernel WireGuard: genetlink answers cap_net_admin, and gives no private key
  check "permwg: alice's status shows the peer (kernel WireGuard)" bash -c "fc alice status permwg | grep -q '^  peer '"
fi
expect "nothing alice or mallory was shown names the VPN's files, their directories or fields, or a denied read" "" \
  grep -e "$wgdir" -e "$ovdir" -e "$secdir" -e 'vpn\.config' -e 'vpn\.auth_file' -e 'vpn\.password_file' -e 'Permission denied' "$perm_seen"
grep -q . "$perm_seen" && ok "... (and they were shown something: $(wc -l < "$perm_seen") lines)" || fail "... (they were shown nothing at all)"
for p in permwg permovpn permoc; do
  check "alice takes $p down (cap_setuid,cap_setgid)" fcu alice down "$p"
  expect "... and nothing of $p is left" "" leftovers_of "$p"
done
# shellcheck disable=SC2086
rm -f "$LAB_DIR"/profiles/perm*.toml $perm_files "$perm_seen" /run/perm-up.err /run/perm-fwd.out
rm -rf "$ovdir" "$secdir"
if [ "$wgdir_mode" = none ]; then rmdir "$wgdir"; else chmod "$wgdir_mode" "$wgdir"; fi
check "up alpha again" nsvpn up alpha
sed -i '/^\[access\]/,$d' "$LAB_DIR/profiles/alpha.toml"
userdel alice; userdel carol; userdel mallory; groupdel consultants 2>/dev/null
rm -rf /run/filecap
