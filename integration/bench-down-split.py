#!/usr/bin/env python3
"""The split of `down` for bench.sh: nsvpn's and the shell equivalent's, each
run traced, and each split into wireguard-go's wait for the kernel and the
rest.

Both downs end with wireguard-go's exit: nsvpn waits for the process, the
shell for the UAPI socket, which wireguard-go removes only after it has
closed its inotify descriptor (it watches that socket's file). That close
waits for the kernel's fsnotify SRCU grace period: about 0.2 ms when the
kernel can expedite it, several jiffies (12-25 ms at HZ=250) when a second
one finds the first still running, which is what closing one inotify watch
usually starts (the mark's reaper and its connector's each wait for one).
Its length varies from run to run far more than everything else in down.

Each down runs with the sched_switch event traced in a tracing instance of
its own (created here, removed at the end; the machine's own trace buffer is
not touched): the time a wireguard-go thread spends switched out after
blocking in inotify_release, as far as it falls within that down, is that
run's wait, taken out of that run. nsvpn waits for wireguard-go's exit, so
all of it falls within; the shell returns once the socket is gone, which
wireguard-go, when its device went first, removes before that close.
Without tracefs, says so and measures nothing.

Usage: bench-down-split.py RUNS WG_CONF BENCH_SHELL OUTDIR
Writes OUTDIR/split_down_{ns,sh}_{all,wait,rest}, one number (ms) per line.
"""

import os
import re
import statistics
import subprocess
import sys
import time

runs, conf, shell, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
TRACEFS = "/sys/kernel/tracing"
INSTANCE = f"{TRACEFS}/instances/nsvpn-bench-down"
QUIET = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def tracefs():
    if not os.path.isdir(f"{TRACEFS}/instances"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], **QUIET)
    if not os.path.isdir(f"{TRACEFS}/instances"):
        return False
    if not os.path.isdir(INSTANCE):
        os.mkdir(INSTANCE)
    ev = f"{INSTANCE}/events/sched/sched_switch"
    write(f"{INSTANCE}/trace_clock", "mono")
    write(f"{ev}/filter", 'prev_comm == "wireguard-go" || next_comm == "wireguard-go"')
    write(f"{ev}/trigger", 'stacktrace if prev_comm == "wireguard-go" && prev_state & 2')
    return True


def traced(argv):
    """Runs argv (ms, and the time wireguard-go waited in inotify_release)."""
    write(f"{INSTANCE}/trace", "")
    write(f"{INSTANCE}/events/sched/sched_switch/enable", "1")
    t0 = time.monotonic()
    subprocess.run(argv, check=True, **QUIET)
    t1 = time.monotonic()
    # The shell's down returns once the socket is gone: let the exit finish.
    time.sleep(0.05)
    write(f"{INSTANCE}/events/sched/sched_switch/enable", "0")
    return (t1 - t0) * 1000, waited(open(f"{INSTANCE}/trace").read(), t0, t1)


SWITCH = re.compile(r" (\d+\.\d+): sched_switch: prev_comm=(.*?) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=.* next_pid=(\d+) ")
STACK = re.compile(r"-(\d+) +\[\d+\] .* <stack trace>")


def waited(trace, t0, t1):
    """Sums, per thread, each time off the CPU that began in inotify_release,
    clipped to [t0, t1] (the trace's mono clock is time.monotonic's)."""
    total, last_d, blocked, lines = 0.0, {}, {}, trace.split("\n")
    within = lambda a, b: max(0.0, min(b, t1) - max(a, t0))
    i = 0
    while i < len(lines):
        m = SWITCH.search(lines[i])
        if m:
            t, prev, state, nxt = float(m.group(1)), int(m.group(3)), m.group(4), int(m.group(5))
            if nxt in blocked:
                total += within(blocked.pop(nxt), t)
            last_d.pop(prev, None)
            if m.group(2) == "wireguard-go" and state.startswith("D"):
                last_d[prev] = t
        s = STACK.search(lines[i])
        if s:
            tid, frames = int(s.group(1)), []
            while i + 1 < len(lines) and lines[i + 1].startswith(" =>"):
                i += 1
                frames.append(lines[i])
            if tid in last_d and any("inotify_release" in f for f in frames):
                blocked[tid] = last_d.pop(tid)
        i += 1
    # Still blocked when the trace stopped: blocked until then at least.
    total += sum(within(a, t1) for a in blocked.values())
    return total * 1000


rows = {k: [] for k in ("sh_all", "sh_wait", "ns_all", "ns_wait")}
if not tracefs():
    print("  not measured: this kernel has no tracefs with instances (/sys/kernel/tracing)")
    sys.exit(0)
try:
    for _ in range(runs):
        subprocess.run([shell, "up", conf], check=True, **QUIET)
        took, wait = traced([shell, "down", conf])
        rows["sh_all"].append(took)
        rows["sh_wait"].append(wait)
        subprocess.run(["nsvpn", "up", "alpha"], check=True, **QUIET)
        took, wait = traced(["nsvpn", "down", "alpha"])
        rows["ns_all"].append(took)
        rows["ns_wait"].append(wait)
finally:
    write(f"{INSTANCE}/events/sched/sched_switch/enable", "0")
    write(f"{INSTANCE}/events/sched/sched_switch/trigger", "!stacktrace if prev_comm == \"wireguard-go\" && prev_state & 2")
    os.rmdir(INSTANCE)
for who in ("sh", "ns"):
    rows[f"{who}_rest"] = [a - w for a, w in zip(rows[f"{who}_all"], rows[f"{who}_wait"])]
for k, v in rows.items():
    write(f"{out}/split_down_{k}", "\n".join(f"{x}" for x in v))
f = lambda k: f"{statistics.median(rows[k]):6.2f} ms ({min(rows[k]):.1f}-{max(rows[k]):.1f})"
for who, name in (("ns", "nsvpn"), ("sh", "shell")):
    print(f"  {name}: down {f(who + '_all')}, of which wireguard-go's wait {f(who + '_wait')}, the rest {f(who + '_rest')}")
