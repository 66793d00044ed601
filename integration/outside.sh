# Sourced by demo.sh and bench.sh: the part that runs on the real machine.
# Checks root, installs the packages, builds nsvpn, then re-runs the calling
# script with --inside in a sandbox (see sandbox.sh). Returns only when the
# caller is already inside.
# Usage: source outside.sh "$0" "$@"
if [ "${2:-}" != "--inside" ]; then
  [ "$(id -u)" = 0 ] || { echo "$(basename "$1"): run as root (sudo $1)" >&2; exit 1; }
  "$here/deps.sh"
  (cd "$root" && cargo build --release --locked)
  exec "$here/sandbox.sh" "$1" --inside "${@:2}"
fi
