//! SIGINT (Ctrl-C), SIGTERM and SIGHUP while nsvpn changes the machine.
//!
//! Killed by one of them half-way, an `up` would leave a namespace, links,
//! files and a running VPN client behind, and a `down` half a profile. So
//! `up` and `down` block the three signals (see [`watch`]) and read them
//! from a signalfd instead: the waits of `up` poll it and return at once,
//! the steps in between ask [`Watch::check`], and the error that comes back
//! takes `up` down its ordinary rollback. A `down`, and the rollback, are
//! never cut short: a signal that arrives then waits until they are done.
//!
//! A blocked mask is inherited across fork and exec: the VPN clients get an
//! empty one before their exec (`client::spawn`), and `exec`'s command the
//! caller's own ([`Watch::caller_mask`], the last step before `execvp`).

use std::future::Future;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals that mean "stop": Ctrl-C, `kill`, a terminal hang-up.
pub const STOP: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// An operation cut short by a signal. `then` says what nsvpn did about it
/// (empty until the operation's owner has rolled back).
#[derive(Debug)]
pub struct Interrupted {
    pub signal: Signal,
    pub then: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", self.signal)?;
        if !self.then.is_empty() {
            write!(f, ": {}", self.then)?;
        }
        Ok(())
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    /// 128 + the signal's number, as a shell reports a command a signal ended.
    pub fn exit_code(&self) -> u8 {
        128u8.saturating_add(self.signal as u8)
    }
}

/// The signal that `e` (or an error it wraps) reports, if it is an interruption.
pub fn interruption(e: &anyhow::Error) -> Option<&Interrupted> {
    e.downcast_ref::<Interrupted>()
}

/// The stop signals, blocked in this thread and read from a signalfd.
pub struct Watch {
    fd: SignalFd,
    caller_mask: SigSet,
    /// The first stop signal read (0: none yet). Later ones are left unread.
    caught: AtomicI32,
}

impl Watch {
    /// Blocks [`STOP`] in the calling thread (threads it starts later inherit
    /// the mask; one that already runs does not, so call this while
    /// single-threaded) and opens the signalfd that receives them.
    pub fn new() -> Result<Watch> {
        let set: SigSet = STOP.into_iter().collect();
        let caller_mask = set
            .thread_swap_mask(SigmaskHow::SIG_BLOCK)
            .context("cannot block SIGINT, SIGTERM and SIGHUP")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .context("cannot open a signalfd for SIGINT, SIGTERM and SIGHUP")?;
        Ok(Watch {
            fd,
            caller_mask,
            caught: AtomicI32::new(0),
        })
    }

    /// The signal mask nsvpn was started with, for a command it execs.
    pub fn caller_mask(&self) -> SigSet {
        self.caller_mask
    }

    /// Readable when a stop signal is pending: for poll(2).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The stop signal that arrived, if any (it reads one from the signalfd
    /// when none was read yet; never blocks).
    pub fn caught(&self) -> Option<Signal> {
        let mut signo = self.caught.load(Ordering::SeqCst);
        if signo == 0
            && let Ok(Some(info)) = self.fd.read_signal()
        {
            signo = info.ssi_signo as i32;
            self.caught.store(signo, Ordering::SeqCst);
        }
        Signal::try_from(signo).ok()
    }

    /// Fails with [`Interrupted`] once a stop signal arrived.
    pub fn check(&self) -> Result<()> {
        match self.caught() {
            Some(signal) => Err(Interrupted {
                signal,
                then: String::new(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Sleeps for `d`, or less if a stop signal arrives (then [`Interrupted`]).
    pub fn sleep(&self, d: Duration) -> Result<()> {
        self.check()?;
        let ms = u16::try_from(d.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
        self.check()
    }

    /// Runs `f` until it completes or a stop signal arrives, whichever is
    /// first; in the second case `f` is dropped at the await it had reached
    /// and the result is [`Interrupted`].
    pub async fn until<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        use futures_util::future::{Either, select};
        let arrival = std::pin::pin!(self.arrival());
        match select(std::pin::pin!(f), arrival).await {
            Either::Left((done, _)) => done,
            Either::Right((signal, _)) => Err(Interrupted {
                signal: signal?,
                then: String::new(),
            }
            .into()),
        }
    }

    /// Completes once a stop signal has been read.
    async fn arrival(&self) -> Result<Signal> {
        use tokio::io::Interest;
        use tokio::io::unix::AsyncFd;
        // SAFETY: the descriptor is borrowed from `self`, so it stays open
        // and the same for as long as `afd` lives.
        let afd = unsafe { AsyncFd::register_with_interest(self.fd(), Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("cannot watch the signalfd: {e}"))?;
        loop {
            if let Some(signal) = self.caught() {
                return Ok(signal);
            }
            afd.readable()
                .await
                .context("cannot watch the signalfd")?
                .clear_ready();
        }
    }
}

static WATCH: OnceLock<Watch> = OnceLock::new();

/// Starts reading the stop signals for the rest of the process (once; the
/// mask is never unblocked again, except in an exec'd command). Call it
/// while single-threaded, before the first change to the machine.
pub fn watch() -> Result<&'static Watch> {
    if let Some(w) = WATCH.get() {
        return Ok(w);
    }
    let w = Watch::new()?;
    Ok(WATCH.get_or_init(|| w))
}

/// The process's watch, if [`watch`] was called.
pub fn watched() -> Option<&'static Watch> {
    WATCH.get()
}

/// [`Watch::check`] of the process's watch; nothing before [`watch`].
pub fn check() -> Result<()> {
    watched().map_or(Ok(()), Watch::check)
}

/// Runs `f` on a single-threaded runtime, as [`crate::util::block_on`], but
/// returns at once with [`Interrupted`] when a stop signal arrives.
pub fn block_on<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    match watched() {
        Some(w) => crate::util::block_on(w.until(f))?,
        None => crate::util::block_on(f)?,
    }
}

/// Signals for unit tests, sent to one thread only: the test harness runs
/// other tests in other threads, where the stop signals are not blocked.
#[cfg(test)]
pub(crate) mod testing {
    use nix::libc;
    use nix::sys::signal::Signal;
    use std::time::Duration;

    pub fn this_thread() -> libc::pthread_t {
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() }
    }

    pub fn raise_in(thread: libc::pthread_t, sig: Signal) {
        // SAFETY: the thread is a test's own, alive while it waits.
        assert_eq!(unsafe { libc::pthread_kill(thread, sig as i32) }, 0);
    }

    pub fn raise_here(sig: Signal) {
        raise_in(this_thread(), sig);
    }

    /// Sends `sig` to `thread` from another thread, after `after`.
    pub fn raise_later(thread: libc::pthread_t, sig: Signal, after: Duration) {
        std::thread::spawn(move || {
            std::thread::sleep(after);
            raise_in(thread, sig);
        });
    }

    /// Unblocks what a test's `Watch` blocked.
    pub fn restore(w: super::Watch) {
        w.caller_mask().thread_set_mask().unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_stop_signal_is_read_not_obeyed_and_the_first_one_counts() {
        let w = Watch::new().unwrap();
        assert!(w.check().is_ok());
        raise_here(Signal::SIGTERM);
        let e = w.check().unwrap_err();
        let i = interruption(&e).unwrap();
        assert_eq!(i.signal, Signal::SIGTERM);
        assert_eq!(i.exit_code(), 143);
        assert_eq!(e.to_string(), "interrupted by SIGTERM");
        raise_here(Signal::SIGINT);
        assert_eq!(w.caught(), Some(Signal::SIGTERM));
        // The mask to give back is the caller's: without the stop signals.
        assert!(!w.caller_mask().contains(Signal::SIGTERM));
        // The second signal stays pending in the signalfd; read it before
        // unblocking, or it would end the test process.
        assert_eq!(w.fd.read_signal().unwrap().unwrap().ssi_signo, 2);
        restore(w);
    }

    #[test]
    fn a_sleep_and_a_future_end_at_once_on_a_signal() {
        let w = Watch::new().unwrap();
        let me = this_thread();
        raise_later(me, Signal::SIGHUP, Duration::from_millis(100));
        let t = Instant::now();
        let e = w.sleep(Duration::from_secs(20)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(interruption(&e).unwrap().signal, Signal::SIGHUP);
        restore(w);

        let w = Watch::new().unwrap();
        raise_later(me, Signal::SIGINT, Duration::from_millis(100));
        let t = Instant::now();
        let r = crate::util::block_on(w.until(async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            anyhow::Ok(1)
        }))
        .unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(
            interruption(&r.unwrap_err()).unwrap().signal,
            Signal::SIGINT
        );
        restore(w);
    }

    #[test]
    fn without_a_signal_the_future_decides() {
        let w = Watch::new().unwrap();
        let r = crate::util::block_on(w.until(async { anyhow::Ok(7) })).unwrap();
        assert_eq!(r.unwrap(), 7);
        let t = Instant::now();
        assert!(w.sleep(Duration::from_millis(50)).is_ok());
        assert!(t.elapsed() >= Duration::from_millis(50));
        restore(w);
    }

    #[test]
    fn interrupted_says_what_was_done() {
        let i = Interrupted {
            signal: Signal::SIGINT,
            then: "rolled back everything this `up` created".into(),
        };
        assert_eq!(
            i.to_string(),
            "interrupted by SIGINT: rolled back everything this `up` created"
        );
        assert_eq!(i.exit_code(), 130);
        let e = anyhow::Error::from(i).context("profile acme");
        assert_eq!(interruption(&e).unwrap().signal, Signal::SIGINT);
    }
}
