#!/usr/bin/env bash
# Runs a command in a sandbox: a new network, mount and PID namespace.
# - no packet can reach the machine's real interfaces (the sandbox's network
#   namespace has only the links the lab makes);
# - /run is a fresh tmpfs, and /etc an overlay whose changes live in that
#   tmpfs: the tests add users, /etc/nsvpn and /etc/netns there, and nothing
#   nsvpn or the tests write reaches the real machine;
# - /tmp is a fresh tmpfs too (mode 1777, as on any machine): the tests'
#   scratch files (/tmp/out, X's sockets) go away with the sandbox;
# - when the command ends, the kernel kills every process left in the PID
#   namespace, so nothing outlives the sandbox, also when a test fails.
# Usage: sandbox.sh COMMAND [ARGS...]
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "sandbox.sh: needs root (try: sudo $0 $*)" >&2
  exit 1
fi
exec unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
  bash -c 'set -e
    mount -t tmpfs -o mode=0755 nsvpn-sandbox-run /run
    mount -t tmpfs -o mode=1777 nsvpn-sandbox-tmp /tmp
    mkdir -p /run/lock /run/user /run/.sandbox-etc/upper /run/.sandbox-etc/work
    mount -t overlay nsvpn-sandbox-etc \
      -o lowerdir=/etc,upperdir=/run/.sandbox-etc/upper,workdir=/run/.sandbox-etc/work /etc
    mkdir -p /etc/netns
    mount -t tmpfs -o mode=0755 nsvpn-sandbox-netns /etc/netns
    ip link set lo up
    "$@"; exit $?' sandbox "$@"
