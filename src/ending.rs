//! Ending processes together: each is signalled as soon as its part asks,
//! and all are waited for at once, each through a pidfd (readable the
//! moment it exits: no polling, no sleep between looks). A process still
//! running after its grace time gets SIGKILL. `down` so waits for the
//! slowest of its processes, not for the sum of them.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::backend::client;
use crate::util;

/// How long a process SIGKILL was sent to may take to be gone.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// One process being ended.
struct Going {
    pid: u32,
    /// None on a kernel without pidfds (before 5.3): then it is looked at
    /// every few milliseconds instead.
    fd: Option<OwnedFd>,
    /// When it gets SIGKILL if it still runs.
    deadline: Instant,
    /// A signal still to send when the wait begins, if it still runs.
    later: Option<(Signal, Duration)>,
    killed: bool,
}

impl Going {
    fn gone(&self) -> bool {
        !util::alive(self.pid)
    }
}

/// The processes being ended, and what became of them.
#[derive(Default)]
pub struct Ending {
    going: Vec<Going>,
    /// The pids SIGKILL ended.
    killed: Vec<u32>,
}

impl Ending {
    pub fn new() -> Ending {
        Ending::default()
    }

    /// Sends `signal` to `pid` (and SIGCONT, since a stopped process acts on
    /// nothing else) and waits for it with the others; SIGKILL once `grace`
    /// is over. Returns false if it was already gone.
    pub fn signal(&mut self, pid: u32, signal: Signal, grace: Duration) -> bool {
        // The pidfd first: from then on the pid cannot be reused under us.
        let fd = client::pidfd(pid).ok();
        if kill(Pid::from_raw(pid as i32), signal).is_err() {
            return false;
        }
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
        self.watch(pid, fd, grace);
        true
    }

    /// Waits for `pid` (already asked to end) with the others.
    pub fn wait_for(&mut self, pid: u32, grace: Duration) {
        if util::alive(pid) {
            self.watch(pid, client::pidfd(pid).ok(), grace);
        }
    }

    /// Waits for `pid`, which ends by itself once what the other parts
    /// remove meanwhile is gone (wireguard-go, once its device is deleted);
    /// if it still runs when the wait begins, `signal` then, and SIGKILL
    /// after `grace`.
    pub fn later(&mut self, pid: u32, signal: Signal, grace: Duration) {
        if util::alive(pid) {
            self.watch(pid, client::pidfd(pid).ok(), grace);
            if let Some(g) = self.going.iter_mut().find(|g| g.pid == pid) {
                g.later = Some((signal, grace));
            }
        }
    }

    fn watch(&mut self, pid: u32, fd: Option<OwnedFd>, grace: Duration) {
        if self.going.iter().any(|g| g.pid == pid) {
            return;
        }
        self.going.push(Going {
            pid,
            fd,
            deadline: Instant::now() + grace,
            later: None,
            killed: false,
        });
    }

    /// Whether `pid` is among the processes being ended.
    pub fn has(&self, pid: u32) -> bool {
        self.going.iter().any(|g| g.pid == pid)
    }

    /// Waits until every process is gone: SIGKILL to each whose grace time
    /// is over, and at most [`AFTER_KILL`] more for those. Returns the pids
    /// SIGKILL ended (and any it could not end).
    pub fn wait(mut self) -> Vec<u32> {
        for g in self.going.iter_mut() {
            if let Some((signal, grace)) = g.later.take()
                && !g.gone()
            {
                let _ = kill(Pid::from_raw(g.pid as i32), signal);
                let _ = kill(Pid::from_raw(g.pid as i32), Signal::SIGCONT);
                g.deadline = Instant::now() + grace;
            }
        }
        loop {
            self.going.retain(|g| !g.gone());
            if self.going.is_empty() {
                return self.killed;
            }
            let now = Instant::now();
            for g in self
                .going
                .iter_mut()
                .filter(|g| !g.killed && now >= g.deadline)
            {
                let _ = kill(Pid::from_raw(g.pid as i32), Signal::SIGKILL);
                g.killed = true;
                g.deadline = now + AFTER_KILL;
                self.killed.push(g.pid);
            }
            if let Some(g) = self.going.iter().find(|g| g.killed && now >= g.deadline) {
                // Unkillable (a process stuck in the kernel): give up on
                // it rather than hang `down`; it is reported as killed.
                let pid = g.pid;
                self.going.retain(|g| g.pid != pid);
                continue;
            }
            let next = self.going.iter().map(|g| g.deadline).min().unwrap_or(now);
            let mut slice = next.saturating_duration_since(now);
            if self.going.iter().any(|g| g.fd.is_none()) {
                slice = slice.min(Duration::from_millis(5));
            }
            let mut fds: Vec<PollFd<'_>> = self
                .going
                .iter()
                .filter_map(|g| g.fd.as_ref())
                .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            let ms = u16::try_from(slice.as_millis().max(1)).unwrap_or(u16::MAX);
            if fds.is_empty() {
                std::thread::sleep(Duration::from_millis(u64::from(ms)));
            } else {
                // EINTR (a signal `down` reads rather than obeys) just means
                // looking again.
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
            // A readable pidfd is found by the `gone` check at the top.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn spawn(script: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        // SAFETY: signal() is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::libc::signal(nix::libc::SIGTERM, nix::libc::SIG_DFL);
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    #[test]
    fn all_are_waited_for_at_once_and_the_stubborn_killed() {
        let mut a = spawn("exec sleep 41");
        let mut b = spawn("exec sleep 42");
        let mut stubborn = spawn("trap '' TERM; while :; do sleep 0.01; done");
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        let mut e = Ending::new();
        assert!(e.signal(a.id(), Signal::SIGTERM, Duration::from_secs(5)));
        assert!(e.signal(b.id(), Signal::SIGTERM, Duration::from_secs(5)));
        assert!(e.signal(stubborn.id(), Signal::SIGTERM, Duration::from_millis(300)));
        // Children of this test stay zombies until reaped: reap them as
        // they go, as their real parent would.
        let reaper = std::thread::spawn(move || {
            for c in [&mut a, &mut b, &mut stubborn] {
                let _ = c.wait();
            }
        });
        let killed = e.wait();
        let took = t.elapsed();
        reaper.join().unwrap();
        assert_eq!(killed.len(), 1, "{killed:?}");
        // The stubborn one's grace, not the sum of three waits.
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn a_process_already_gone_is_no_wait() {
        let mut c = spawn("exit 0");
        let pid = c.id();
        c.wait().unwrap();
        let mut e = Ending::new();
        assert!(!e.signal(pid, Signal::SIGTERM, Duration::from_secs(5)));
        assert!(e.wait().is_empty());
    }
}
