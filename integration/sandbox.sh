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
made_etc_netns=0
if [ ! -d /etc/netns ]; then mkdir /etc/netns; made_etc_netns=1; fi
set +e
unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
  bash -c 'set -e
    mount -t tmpfs -o mode=0755 nsvpn-sandbox-run /run
    mkdir -p /run/lock /run/user
    mount -t tmpfs -o mode=0755 nsvpn-sandbox-netns /etc/netns
    ip link set lo up
    exec "$@"' sandbox "$@"
rc=$?
set -e
if [ "$made_etc_netns" = 1 ]; then rmdir /etc/netns 2>/dev/null || true; fi
exit $rc
