//! Small helpers shared by several modules.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The last `n` lines of a log file, indented, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..]
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (cannot read it: {e})"),
    }
}

/// Whether the process `pid` still runs (a zombie counts as gone). A process
/// nsvpn did not start is not its to reap, so this reads /proc.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !matches!(
            s.rsplit_once(") ").map(|(_, r)| r.as_bytes()[0]),
            Some(b'Z') | Some(b'X')
        ),
        Err(_) => false,
    }
}

fn gone(pid: Pid) -> bool {
    !alive(pid.as_raw() as u32)
}

/// Sends SIGTERM, waits up to `grace` for the process to end, then SIGKILL
/// and waits for it to be gone.
pub fn terminate(pid: Pid, grace: Duration) {
    if kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    let start = Instant::now();
    while !gone(pid) {
        if start.elapsed() > grace {
            let _ = kill(pid, Signal::SIGKILL);
            let hard = Instant::now();
            while !gone(pid) && hard.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(5));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Seconds since the epoch, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets the log level from the count of `-v` flags.
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, std::sync::atomic::Ordering::Relaxed);
}

pub fn verbosity() -> u8 {
    VERBOSITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints a progress line on stderr when at least `-v` was given.
#[macro_export]
macro_rules! vlog {
    ($($arg:tt)*) => {
        if $crate::util::verbosity() >= 1 {
            eprintln!("nsvpn: {}", format_args!($($arg)*));
        }
    };
}

/// Runs a future to completion on a single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the netlink runtime: {e}"))?;
    Ok(rt.block_on(f))
}
