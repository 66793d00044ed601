//! What the helper programs a split profile runs (the user-mode stack, the
//! resolver) share: started detached with a pid file, checked by pid, found
//! by name after a crash, stopped.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use anyhow::{Context, Result, anyhow, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::HELPER_GRACE;
use crate::backend::client::{self, Within};
use crate::ending::Ending;
use crate::names::Names;
use crate::paths;
use crate::procs::Procs;
use crate::{signals, util};

/// Where the system keeps `program` (never the caller's PATH: it runs as
/// root).
pub fn find(program: &str) -> Result<PathBuf> {
    std::env::split_paths(std::ffi::OsStr::new(util::SYSTEM_PATH))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("{program} is not installed: a [split] profile needs it (Debian/Ubuntu: apt-get install {})",
                if program == "dnsmasq" { "dnsmasq-base" } else { program })
        })
}

/// Starts `program` for the profile ([`Within`] where it must run), logging
/// to its log file, and records its pid.
pub fn start(
    names: &Names,
    program: &str,
    args: &[OsString],
    within: Within<'_>,
    fd3: Option<BorrowedFd<'_>>,
) -> Result<u32> {
    let path = find(program)?;
    let log = paths::log_file(&names.profile, program);
    let pid = client::spawn_in(within, &path, args, None, fd3, &log)?;
    util::write_atomic(
        &paths::pid_file(&names.profile, program),
        format!("{pid}\n").as_bytes(),
        0o644,
    )?;
    Ok(pid)
}

/// Starts nsvpn itself as the profile's helper `command` (the idle
/// watcher, the kept forwards, the IPsec supervisor), on the host, with
/// `stdin` (if any) on its standard input, logging to the profile's `files`
/// log; records its pid and waits for its word on fd 3: "ok", or why it
/// could not start. `what` names it in the error ("the profile's idle
/// watcher").
pub fn start_own(
    profile: &str,
    command: &str,
    files: &str,
    stdin: Option<&[u8]>,
    ready_timeout: Duration,
    what: &str,
) -> Result<u32> {
    let exe: PathBuf = std::env::current_exe().context("cannot find nsvpn's own binary")?;
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let args: Vec<OsString> = vec![command.into(), profile.into()];
    let log = paths::log_file(profile, files);
    let pid = client::spawn_in(
        Within::Host,
        &exe,
        &args,
        stdin,
        Some(ready_w.as_fd()),
        &log,
    )?;
    util::write_atomic(
        &paths::pid_file(profile, files),
        format!("{pid}\n").as_bytes(),
        0o644,
    )?;
    drop(ready_w);
    let word = wait_word(&ready_r, ready_timeout)?;
    if word != "ok" {
        let why = if word.is_empty() {
            format!(
                "it ended without a word; the end of its log ({}):\n{}",
                log.display(),
                util::tail(&log, 6)
            )
        } else {
            word
        };
        bail!("{what} did not start: {why}");
    }
    Ok(pid)
}

/// The running `program` of the profile: the one its pid file names, if it
/// is still that program with `marker` (a path of the profile's) among its
/// arguments.
pub fn running(names: &Names, program: &str, marker: &str) -> Option<u32> {
    util::read_pid(&paths::pid_file(&names.profile, program))
        .filter(|pid| util::runs(*pid, program, marker.as_bytes()))
}

/// Every `program` with `marker` among its arguments, recorded or not (a
/// crash may have left one with no pid file).
pub fn all(procs: &Procs, program: &str, marker: &str) -> Vec<u32> {
    procs.running(program, marker.as_bytes())
}

/// Asks every `program` of the profile to end.
pub fn stop_all(procs: &Procs, program: &str, marker: &str, ending: &mut Ending) {
    for pid in all(procs, program, marker) {
        ending.signal(pid, Signal::SIGTERM, HELPER_GRACE);
    }
}

/// Removes the pid file of `program` (once it is gone).
pub fn forget(names: &Names, program: &str) {
    let _ = std::fs::remove_file(paths::pid_file(&names.profile, program));
}

/// The last lines of the helper's log, for an error: enough for the whole
/// of a helper's short life, since an error it wrote to stderr may come
/// before the banner it wrote (buffered) to stdout.
pub fn log_tail(names: &Names, program: &str) -> String {
    util::tail(&paths::log_file(&names.profile, program), 30)
}

/// Whether a command line is the profile's process of one of nsvpn's own
/// hidden commands (`nsvpn kept-forwards <profile>`, `nsvpn idle-watch
/// <profile>`): this binary, by its file name, run with exactly those
/// arguments.
fn runs_own(args: &[Vec<u8>], command: &str, profile: &str) -> bool {
    let want = [command.as_bytes(), profile.as_bytes()];
    own_name().is_some_and(|program| {
        args.len() == 3
            && args[0].rsplit(|b| *b == b'/').next() == Some(program.as_bytes())
            && args[1..] == want
    })
}

/// The profile's processes of the hidden `command` (never this process).
pub fn own_processes(procs: &Procs, command: &str, profile: &str) -> Vec<u32> {
    procs
        .iter()
        .filter(|p| runs_own(&p.argv, command, profile))
        .map(|p| p.pid)
        .collect()
}

/// Whether `pid` is the profile's process of the hidden `command` (a pid
/// file's, checked without a look at all of /proc).
pub fn is_own(pid: u32, command: &str, profile: &str) -> bool {
    util::cmdline(pid).is_some_and(|args| runs_own(&args, command, profile))
}

/// This binary's file name ("nsvpn"), looked up once: `down` asks it of
/// every process in /proc, for each helper part.
fn own_name() -> Option<&'static str> {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::current_exe()
            .ok()?
            .file_name()?
            .to_str()
            .map(str::to_string)
    })
    .as_deref()
}

/// Reads a helper's word on its pipe (its descriptor 3) until it closes
/// the pipe (or exits): "ok" once it is ready, else its error.
pub fn wait_word(fd: &OwnedFd, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut f = std::fs::File::from(nix::unistd::dup(fd).context("dup")?);
    let mut text = Vec::new();
    loop {
        signals::check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "no word from it after {} s (a name that takes long to resolve inside?)",
                timeout.as_secs()
            );
        }
        let ms = left.min(Duration::from_millis(200)).as_millis() as u16;
        let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(anyhow!(e).context("poll")),
        }
        let mut buf = [0u8; 4096];
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("cannot read the helper's word"),
        }
    }
    Ok(String::from_utf8_lossy(&text).trim().to_string())
}

/// A hidden command's descriptor 3, the pipe `up` waits on, if it is open.
pub fn word_pipe() -> Option<std::fs::File> {
    // SAFETY: descriptor 3 is checked to be open before it is owned, and
    // nothing else in this process uses it.
    let open = unsafe { nix::libc::fcntl(3, nix::libc::F_GETFD) } != -1;
    open.then(|| std::fs::File::from(unsafe { OwnedFd::from_raw_fd(3) }))
}
