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

/// What std's runtime does before `main` that nsvpn relies on (its entry
/// point skips that runtime, see main.rs): descriptors 0, 1 and 2 open
/// (a closed one gets /dev/null, so that no file nsvpn opens takes its
/// place and receives its output), and SIGPIPE ignored (a write to a
/// closed pipe is an error nsvpn reports; `exec` gives the command the
/// default back).
pub fn start_up() {
    use nix::libc;
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: three valid pollfd structs, no wait.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    for p in &fds {
        let closed = if polled >= 0 {
            p.revents & libc::POLLNVAL != 0
        } else {
            // SAFETY: only asks whether the descriptor is open.
            (unsafe { libc::fcntl(p.fd, libc::F_GETFD) }) == -1
        };
        // The lowest free descriptor: this one, since those below are open.
        // SAFETY: a constant path.
        if closed && (unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) }) == -1 {
            // Nowhere to say it, as std's runtime does.
            unsafe { libc::abort() };
        }
    }
    // SAFETY: ignoring a signal installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Whether the process `pid` still runs (a zombie counts as gone). A process
/// nsvpn did not start is not its to reap, so this reads /proc.
pub fn alive(pid: u32) -> bool {
    use std::io::Read;
    // "pid (comm) S ...": the state follows the last ") ". The comm is at
    // most 15 bytes, so one short read holds it (no read of the whole).
    let mut buf = [0u8; 128];
    let Ok(n) = std::fs::File::open(format!("/proc/{pid}/stat")).and_then(|mut f| f.read(&mut buf))
    else {
        return false;
    };
    let text = &buf[..n];
    let state = text
        .windows(2)
        .rposition(|w| w == b") ")
        .and_then(|i| text.get(i + 2));
    !matches!(state, Some(b'Z' | b'X'))
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

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Sets the log level from the count of `-v` flags (and, from three on,
/// notes the start: each line then says when it was written).
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, std::sync::atomic::Ordering::Relaxed);
    STARTED.get_or_init(Instant::now);
}

/// `[12.345 ms] ` since the start of nsvpn at `-vvv`, else nothing: where
/// the time of a command goes, line by line.
pub fn stamp() -> String {
    match STARTED.get() {
        Some(t) if verbosity() >= 3 => {
            format!("[{:8.3} ms] ", t.elapsed().as_secs_f64() * 1000.0)
        }
        _ => String::new(),
    }
}

pub fn verbosity() -> u8 {
    VERBOSITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints a progress line on stderr when at least `-v` was given.
#[macro_export]
macro_rules! vlog {
    ($($arg:tt)*) => {
        if $crate::util::verbosity() >= 1 {
            eprintln!("nsvpn: {}{}", $crate::util::stamp(), format_args!($($arg)*));
        }
    };
}

/// A timing line at `-vvv`: where a command's time goes.
#[macro_export]
macro_rules! vtrace {
    ($($arg:tt)*) => {
        if $crate::util::verbosity() >= 3 {
            eprintln!("nsvpn: {}{}", $crate::util::stamp(), format_args!($($arg)*));
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

/// Whether standard input is a terminal (someone can answer a prompt).
pub fn stdin_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdin())
}

/// Asks for a password on the controlling terminal, without echo.
pub fn read_password(prompt: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("cannot open the terminal to ask for the password")?;
    tty.write_all(prompt.as_bytes())?;
    let old = tcgetattr(&tty).context("cannot read the terminal's settings")?;
    let mut quiet = old.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&tty, SetArg::TCSANOW, &quiet).context("cannot turn the terminal's echo off")?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, SetArg::TCSANOW, &old);
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// A sealed, close-on-exec memfd holding `data`: a file a child can read
/// (as /proc/self/fd/N) that exists on no disk and that nobody can change.
pub fn sealed_memfd(name: &str, data: &[u8]) -> anyhow::Result<std::os::fd::OwnedFd> {
    use anyhow::Context;
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .context("memfd_create")?;
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, data).context("cannot write to a memfd")?;
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(&f, FcntlArg::F_ADD_SEALS(seals)).context("cannot seal a memfd")?;
    Ok(f.into())
}

/// The system's programs, for root: nsvpn looks for VPN clients here and
/// gives it to root's own processes (never a user's PATH).
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Replaces `path` with `bytes` all at once (a reader sees the old file or
/// the new, never half of one), with `mode` whatever the caller's umask.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("nsvpn-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Every running process's pid but this one's, from /proc.
pub fn other_pids() -> impl Iterator<Item = u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(move |pid| *pid != me)
}

/// A process's command line, word by word (None once it is gone).
pub fn cmdline(pid: u32) -> Option<Vec<Vec<u8>>> {
    use std::io::Read;
    // Read in 4 KiB steps, not with `fs::read`, which first asks the file's
    // size (procfs has none to give): `down` reads every process's. The
    // kernel fills each read as far as the command line goes, so a short
    // one is the end.
    let mut f = std::fs::File::open(format!("/proc/{pid}/cmdline")).ok()?;
    let (mut raw, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match f.read(&mut buf) {
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// The pid in a pid file, if it holds one.
pub fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` runs `program` (its file name) with an argument that
/// contains `marker` (a helper's namespace or profile name).
pub fn runs(pid: u32, program: &str, marker: &[u8]) -> bool {
    let Some(args) = cmdline(pid) else {
        return false;
    };
    let named = args
        .first()
        .is_some_and(|a| a.rsplit(|b| *b == b'/').next() == Some(program.as_bytes()));
    named
        && args
            .iter()
            .skip(1)
            .any(|a| a.windows(marker.len()).any(|w| w == marker))
}
/// Sends `message` to syslog (`/dev/log`: the journal under systemd), as
/// `nsvpn[pid]`, facility daemon, level notice. Without a syslog daemon it
/// goes nowhere (no console).
pub fn syslog(message: &str) {
    static OPENED: std::sync::Once = std::sync::Once::new();
    // SAFETY: openlog keeps the pointer to the identity, a static string;
    // syslog gets a constant format and one NUL-terminated argument.
    OPENED.call_once(|| unsafe {
        nix::libc::openlog(c"nsvpn".as_ptr(), nix::libc::LOG_PID, nix::libc::LOG_DAEMON)
    });
    if let Ok(m) = std::ffi::CString::new(message) {
        unsafe { nix::libc::syslog(nix::libc::LOG_NOTICE, c"%s".as_ptr(), m.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::{alive, cmdline, start_up};

    /// A command line longer than one 4 KiB read comes back whole, word by
    /// word; a pid that is gone gives None.
    #[test]
    fn cmdline_reads_past_one_read_and_none_once_gone() {
        use std::os::unix::process::CommandExt;
        let long = "x".repeat(4096 * 2 + 17);
        let mut child = std::process::Command::new("sleep")
            .arg0(&long)
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        // spawn returns once the exec is past its point of no return, a
        // moment before the kernel lays out the new command line (empty
        // until then).
        let start = std::time::Instant::now();
        let mut args = cmdline(pid).unwrap();
        while args.is_empty() && start.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(1));
            args = cmdline(pid).unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(args, [long.into_bytes(), b"30".to_vec()]);
        assert_eq!(cmdline(pid), None);
    }

    /// A descriptor 0-2 that is closed gets /dev/null; open ones are kept.
    #[test]
    fn start_up_opens_dev_null_on_a_closed_descriptor() {
        use nix::libc;
        use nix::sys::wait::{WaitStatus, waitpid};
        use nix::unistd::{ForkResult, fork};
        let check = || {
            // SAFETY: plain system calls on constant data.
            unsafe {
                libc::close(1);
                start_up();
                let mut buf = [0u8; 64];
                let n = libc::readlink(
                    c"/proc/self/fd/1".as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                );
                let ignored = libc::signal(libc::SIGPIPE, libc::SIG_IGN) == libc::SIG_IGN;
                let ok = n > 0 && &buf[..n as usize] == b"/dev/null" && ignored;
                libc::_exit(if ok { 0 } else { 1 });
            }
        };
        // SAFETY: the child makes only async-signal-safe calls, then _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => check(),
            ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            }
        }
    }

    /// A running process is alive; a zombie (ended, not yet reaped) and a
    /// reaped one are not.
    #[test]
    fn alive_reads_the_state_after_the_name() {
        assert!(alive(std::process::id()));
        // A program whose name (the comm) has ") " in it.
        let dir = std::env::temp_dir().join(format!("nsvpn-alive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prog = dir.join("x) Z y");
        std::fs::copy("/bin/sleep", &prog).unwrap();
        let mut c = std::process::Command::new(&prog).arg("5").spawn().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let pid = c.id();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(alive(pid));
        c.kill().unwrap();
        // Killed, not reaped: a zombie.
        for _ in 0..100 {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!alive(pid), "a zombie is not alive");
        c.wait().unwrap();
        assert!(!alive(pid));
    }
}
