#!/usr/bin/env bash
# Runs a command in a sandbox: a new network, mount and PID namespace.
# - no packet can reach the machine's real interfaces (the sandbox's network
#   namespace has only the links the lab makes);
# - /run and /etc/netns are fresh tmpfs mounts, so nothing nsvpn writes there
#   reaches the real machine;
# - when the command ends, the kernel kills every process left in the PID
#   namespace, so nothing outlives the sandbox, also when a test fails.
# Usage: sandbox.sh COMMAND [ARGS...]
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "sandbox.sh: needs root (try: sudo $0 $*)" >&2
  exit 1
fi
# /etc/netns must exist to be mounted over. Every sandbox holds a shared lock
# while it runs; the last one out removes the directory if a sandbox made it.
exec 9>/run/lock/nsvpn-sandbox.lock
flock -s 9
if mkdir /etc/netns 2>/dev/null; then touch /run/lock/nsvpn-sandbox.made-etc-netns; fi
set +e
unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
  bash -c 'set -e
    mount -t tmpfs -o mode=0755 nsvpn-sandbox-run /run
    mkdir -p /run/lock /run/user
    mount -t tmpfs -o mode=0755 nsvpn-sandbox-netns /etc/netns
    ip link set lo up
    "$@"; exit $?' sandbox "$@"
rc=$?
set -e
if flock -xn 9 && [ -e /run/lock/nsvpn-sandbox.made-etc-netns ]; then
  rmdir /etc/netns 2>/dev/null || true
  rm -f /run/lock/nsvpn-sandbox.made-etc-netns
fi
exit $rc
