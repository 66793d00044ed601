# The secrets audit, sourced by suite-clients.sh while alpha (WireGuard),
# charlie (OpenVPN, auth_file) and delta (OpenConnect, password_file) are up:
# no private key, preshared key or password appears in anything nsvpn prints
# (status, list, -vvv logs, errors), in the files it writes, on a command
# line, in a client's environment, or in a temporary file.

echo "# secrets never appear in output, logs, errors, command lines, environments or temporary files"
secrets=$LAB_DIR/secrets.list   # the lab's own directory is left out of the scans
wrong='wrong-NSVPN-audit-password'
{
  echo "$LAB_PASSWORD"; echo "$wrong"
  for p in alpha bravo; do
    k=$(cat "$LAB_DIR/$p/client.key"); echo "$k"
    python3 -c 'import base64,sys; print(base64.b64decode(sys.argv[1]).hex())' "$k"   # UAPI form
  done
  # A line of the body of charlie's private key, which its .ovpn holds inline.
  sed -n '2p' "$LAB_DIR/charlie/client.key"
} > "$secrets"
leaks() { grep -F -f "$secrets"; }   # prints the lines that hold a secret

out=$LAB_DIR/audit.out
: > "$out"
for p in alpha bravo charlie delta; do
  { nsvpn status "$p"; nsvpn status "$p" --json; } >> "$out" 2>&1
done
{ nsvpn status; nsvpn status --json; nsvpn list; } >> "$out" 2>&1
for p in alpha charlie delta; do
  { nsvpn -vvv down "$p"; nsvpn -vvv up "$p"; } >> "$out" 2>&1
done
# Errors: a wrong password (the server refuses it), and a password file
# and an auth file that cannot be used.
printf '%s\n' "$wrong" > "$P/deltabad.password"; chmod 600 "$P/deltabad.password"
sed 's/^password_file = .*/password_file = "deltabad.password"/' "$P/delta.toml" > "$P/deltabad.toml"
status_is "up with a wrong password fails" 1 nsvpn -vvv up deltabad --timeout 10
cat /tmp/out >> "$out"
printf '%s\n%s\n' "$LAB_USER" "$wrong" > "$P/charliebad.auth"; chmod 600 "$P/charliebad.auth"
sed 's/^auth_file = .*/auth_file = "charliebad.auth"/' "$P/charlie.toml" > "$P/charliebad.toml"
status_is "up with a wrong OpenVPN password fails" 1 nsvpn -vvv up charliebad --timeout 10
cat /tmp/out >> "$out"
grep -q "authentication failed\|AUTH_FAILED\|rejected" "$out" && ok "... and the errors say the password was refused" || { fail "... and the errors say the password was refused"; tail -n 5 "$out"; }
rm -f "$P"/deltabad.* "$P"/charliebad.*

expect "no secret in status, status --json, list, -vvv up/down or the errors" "" leaks < "$out"
# Every file there but the lab's and this repository's (a checkout in /tmp
# holds the lab's scripts, and so its password).
scan() {
  find "$@" \( -path "$LAB_DIR" -o -path "$(cd "$here/.." && pwd)" \) -prune -o -type f -print0 2>/dev/null \
    | xargs -0 -r grep -lF -f "$secrets" 2>/dev/null
}
expect "no secret in any file under /run (but the lab's), /etc/netns, /tmp, /var/tmp or /dev/shm" "" \
  scan /run /etc/netns /tmp /var/tmp /dev/shm
check "... where the clients' logs were searched too" bash -c "ls /run/nsvpn/alpha/wireguard-go.log /run/nsvpn/charlie/openvpn.log /run/nsvpn/delta/openconnect.log"
expect "no secret on any process's command line" "" bash -c "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -F -f '$secrets'"
expect "no secret in the environment of any VPN client" "" \
  bash -c "for p in \$(pgrep -f 'nsvt-'); do tr '\0' '\n' < /proc/\$p/environ; done | grep -F -f '$secrets'"
# The check's own control: the scans find a secret where there is one.
echo "$LAB_PASSWORD" > /run/audit-control
expect "control: the same file scan finds a planted secret" "/run/audit-control" scan /run
rm -f /run/audit-control "$out" "$secrets"
