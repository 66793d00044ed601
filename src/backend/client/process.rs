//! The VPN client processes nsvpn starts in the host namespace
//! (`wireguard-go`, `openvpn`, `openconnect`): started detached, found again
//! by their command line, waited for without busy waiting, and stopped.

use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::SigSet;
use nix::sys::wait::waitpid;
use nix::unistd::{
    ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, execv, fork, pipe, setsid,
};

use crate::procs::Procs;
use crate::signals::Watch;

/// The programs nsvpn runs as tunnel clients. A process counts as a
/// profile's client when it is one of these and its arguments name the
/// profile's tunnel device.
pub const PROGRAMS: [&str; 4] = ["wireguard-go", "openvpn", "openconnect", "charon"];

/// Finds `program` on PATH (or the standard system directories).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| crate::util::SYSTEM_PATH.into());
    std::env::split_paths(&path)
        .chain(std::env::split_paths(OsStr::new(crate::util::SYSTEM_PATH)))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Starts `program args...` in a session of its own, detached from nsvpn
/// (re-parented to init, so that nothing nsvpn execs later ever inherits it
/// as a child), with stdout and stderr appended to `log` and `stdin_data`
/// (if any) on its standard input, `fd3` (if any) as its descriptor 3, and
/// an empty signal mask (nsvpn's `up` blocks SIGINT, SIGTERM and SIGHUP, and
/// a mask survives exec: `down`'s SIGTERM would stay pending forever).
/// Returns its pid.
pub fn spawn(
    program: &Path,
    args: &[OsString],
    stdin_data: Option<&[u8]>,
    fd3: Option<BorrowedFd>,
    log: &Path,
) -> Result<u32> {
    spawn_in(Within::Host, program, args, stdin_data, fd3, log)
}

/// Where [`spawn_in`] starts a program.
#[derive(Clone, Copy)]
pub enum Within<'a> {
    /// Where nsvpn runs (the host's namespaces).
    Host,
    /// Inside this network namespace (a helper that binds inside it, as
    /// the resolver).
    Netns(BorrowedFd<'a>),
    /// In a mount namespace of its own whose mounts are all private: a
    /// program that sets up a sandbox of its own with `pivot_root` (the
    /// stack), which fails where a mount it stands on is shared, as
    /// systemd makes every mount (a tmpfs /tmp, say).
    PrivateMounts,
}

/// [`spawn`], with the program started [`Within`] a place of its own.
pub fn spawn_in(
    within: Within<'_>,
    program: &Path,
    args: &[OsString],
    stdin_data: Option<&[u8]>,
    fd3: Option<BorrowedFd>,
    log: &Path,
) -> Result<u32> {
    spawn_full(within, program, args, stdin_data, fd3, log, None)
}

/// [`spawn`], with the program in a private mount namespace where `dir` is
/// bound over `/run` (charon keeps a fixed pid file and its sockets there:
/// one charon per profile needs a `/run` of its own), and `env` added to
/// its environment. The host's mounts never see the bind.
pub fn spawn_private_run(
    program: &Path,
    args: &[OsString],
    dir: &Path,
    env: &[(&str, &str)],
    log: &Path,
) -> Result<u32> {
    let dir_c = CString::new(dir.as_os_str().as_bytes())?;
    spawn_full(
        Within::Host,
        program,
        args,
        None,
        None,
        log,
        Some(Extras {
            dir: Some(dir_c),
            envp: environment_with(env)?,
        }),
    )
}

/// [`spawn`], with `env` added to the program's environment.
pub fn spawn_with_env(
    program: &Path,
    args: &[OsString],
    fd3: Option<BorrowedFd>,
    env: &[(&str, &str)],
    log: &Path,
) -> Result<u32> {
    spawn_full(
        Within::Host,
        program,
        args,
        None,
        fd3,
        log,
        Some(Extras {
            dir: None,
            envp: environment_with(env)?,
        }),
    )
}

/// nsvpn's environment with `env` added (replacing the same names).
fn environment_with(env: &[(&str, &str)]) -> Result<Vec<CString>> {
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !env.iter().any(|(n, _)| OsStr::new(n) == k))
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    for (k, v) in env {
        envp.push(CString::new(format!("{k}={v}"))?);
    }
    Ok(envp)
}

/// What a program gets besides nsvpn's own environment: a `/run` of its
/// own (bound from `dir`), and its environment.
struct Extras {
    dir: Option<CString>,
    envp: Vec<CString>,
}

fn spawn_full(
    within: Within<'_>,
    program: &Path,
    args: &[OsString],
    stdin_data: Option<&[u8]>,
    fd3: Option<BorrowedFd>,
    log: &Path,
    extras: Option<Extras>,
) -> Result<u32> {
    let prog_c = CString::new(program.as_os_str().as_bytes())?;
    let mut argv = vec![prog_c.clone()];
    for a in args {
        argv.push(
            CString::new(a.as_bytes()).map_err(|_| anyhow!("an argument contains a NUL byte"))?,
        );
    }
    let log_file: OwnedFd = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?
        .into();
    let stdin: OwnedFd = match stdin_data {
        None => std::fs::File::open("/dev/null")?.into(),
        Some(data) => {
            // A pipe holds 64 KiB: a password fits, and the client reads it
            // when it is ready. The write end is closed before the fork.
            let (rd, wr) = pipe().context("pipe")?;
            let mut w = std::fs::File::from(wr);
            w.write_all(data).context("cannot pass the password")?;
            rd
        }
    };
    let (rd, wr) = pipe().context("pipe")?;

    let root = c"/";
    // SAFETY: between fork and exec the children only call async-signal-safe
    // functions (setsid, fork, setns, unshare, mount, dup2, pthread_sigmask, signal,
    // execv, execve, write, _exit) on data prepared above.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let _ = setsid();
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let placed = match within {
                        Within::Host => true,
                        Within::Netns(ns) => unsafe {
                            nix::libc::setns(ns.as_raw_fd(), nix::libc::CLONE_NEWNET) == 0
                        },
                        Within::PrivateMounts => unsafe {
                            nix::libc::unshare(nix::libc::CLONE_NEWNS) == 0
                                && nix::libc::mount(
                                    std::ptr::null(),
                                    root.as_ptr(),
                                    std::ptr::null(),
                                    nix::libc::MS_REC | nix::libc::MS_PRIVATE,
                                    std::ptr::null(),
                                ) == 0
                        },
                    };
                    if !placed {
                        unsafe { nix::libc::_exit(126) }
                    }
                    let _ = SigSet::empty().thread_set_mask();
                    // Rust's runtime ignores SIGPIPE; an ignored signal
                    // stays ignored across execve.
                    unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL) };
                    let _ = dup2_stdin(&stdin);
                    let _ = dup2_stdout(&log_file);
                    let _ = dup2_stderr(&log_file);
                    if let Some(fd) = fd3 {
                        // dup2 onto itself would keep close-on-exec: clear it.
                        if fd.as_raw_fd() == 3 {
                            unsafe { nix::libc::fcntl(3, nix::libc::F_SETFD, 0) };
                        } else {
                            unsafe { nix::libc::dup2(fd.as_raw_fd(), 3) };
                        }
                    }
                    if let Some(run) = &extras {
                        if let Some(dir) = &run.dir
                            && !private_run_mounts(dir)
                        {
                            unsafe { nix::libc::_exit(126) }
                        }
                        let _ = nix::unistd::execve(&prog_c, &argv, &run.envp);
                        unsafe { nix::libc::_exit(127) }
                    }
                    let _ = execv(&prog_c, &argv);
                    unsafe { nix::libc::_exit(127) }
                }
                Ok(ForkResult::Parent { child }) => {
                    let bytes = child.as_raw().to_ne_bytes();
                    unsafe {
                        nix::libc::write(wr.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                        nix::libc::_exit(0)
                    }
                }
                Err(_) => unsafe { nix::libc::_exit(1) },
            }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let _ = waitpid(child, None);
            let mut buf = [0u8; 4];
            let mut f = std::fs::File::from(rd);
            f.read_exact(&mut buf)
                .with_context(|| format!("{} could not be started", program.display()))?;
            Ok(i32::from_ne_bytes(buf) as u32)
        }
    }
}

/// In a forked child: a private mount namespace, `/` made recursively
/// slave (nothing propagates back to the host), `dir` bound over `/run`.
/// Only raw system calls (async-signal-safe).
fn private_run_mounts(dir: &CString) -> bool {
    use nix::libc::{MS_BIND, MS_REC, MS_SLAVE, mount, unshare};
    let root = c"/";
    let run = c"/run";
    // SAFETY: plain system calls on NUL-terminated strings made before the fork.
    unsafe {
        unshare(nix::libc::CLONE_NEWNS) == 0
            && mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                MS_REC | MS_SLAVE,
                std::ptr::null(),
            ) == 0
            && mount(
                dir.as_ptr(),
                run.as_ptr(),
                std::ptr::null(),
                MS_BIND,
                std::ptr::null(),
            ) == 0
    }
}

/// Whether a command line is a client's (one of [`PROGRAMS`]) serving
/// `ifname`.
fn serves(args: &[Vec<u8>], ifname: &str) -> bool {
    let prog_ok = args.first().is_some_and(|a| {
        Path::new(OsStr::from_bytes(a))
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|n| PROGRAMS.contains(&n))
    });
    prog_ok && args.iter().skip(1).any(|a| a == ifname.as_bytes())
}

/// Whether `pid` is a running client (one of [`PROGRAMS`]) serving `ifname`.
pub fn is_ours(pid: u32, ifname: &str) -> bool {
    crate::util::cmdline(pid).is_some_and(|args| serves(&args, ifname))
}

/// Every client process serving `ifname` (found by command line).
pub fn find_processes(procs: &Procs, ifname: &str) -> Vec<u32> {
    procs
        .iter()
        .filter(|p| serves(&p.argv, ifname) && crate::util::alive(p.pid))
        .map(|p| p.pid)
        .collect()
}

/// Running `nsvpn hook <kind> <profile>` processes (a client's script that
/// may still be applying a tunnel while the profile is torn down).
pub fn find_hooks(procs: &Procs, profile: &str) -> Vec<u32> {
    let is_hook = |args: &[Vec<u8>]| {
        args.len() >= 4
            && args[1] == b"hook"
            && args[3] == profile.as_bytes()
            && Path::new(OsStr::from_bytes(&args[0])).file_name() == Some(OsStr::new("nsvpn"))
    };
    procs
        .iter()
        .filter(|p| is_hook(&p.argv) && crate::util::alive(p.pid))
        .map(|p| p.pid)
        .collect()
}

/// A file descriptor that becomes readable when process `pid` exits
/// (pidfd_open, Linux 5.3). Works for any process, not only children.
pub fn pidfd(pid: u32) -> Result<OwnedFd> {
    // SAFETY: a plain syscall; the returned descriptor is owned from here on.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context(format!("pidfd_open({pid})"));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What waiting for a client ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// `ready` became readable.
    Ready,
    /// The process exited first.
    Exited,
    TimedOut,
}

/// Sleeps in poll(2) until `ready` is readable, process `pid` exits, or
/// `timeout` passes: no busy waiting, no hang when the client dies early.
/// Once nsvpn watches the stop signals (`signals::watch`), one of them
/// ends the wait at once with `signals::Interrupted`.
pub fn wait_ready(ready: impl AsFd, pid: u32, timeout: Duration) -> Result<Waited> {
    wait_or_stop(ready, pid, timeout, crate::signals::watched())
}

fn wait_or_stop(
    ready: impl AsFd,
    pid: u32,
    timeout: Duration,
    stop: Option<&Watch>,
) -> Result<Waited> {
    let pfd = pidfd(pid);
    let deadline = Instant::now() + timeout;
    let check = || stop.map_or(Ok(()), Watch::check);
    loop {
        check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Waited::TimedOut);
        }
        let mut fds = vec![PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
        if let Ok(p) = &pfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some(w) = stop {
            fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
        }
        // Without pidfds (old kernels), look at the process every 100 ms.
        let slice = if pfd.is_ok() {
            left
        } else {
            left.min(Duration::from_millis(100))
        };
        let ms = u16::try_from(slice.as_millis().max(1)).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("poll: {e}"),
        }
        check()?;
        let readable = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        if readable(&fds[0]) {
            return Ok(Waited::Ready);
        }
        if (pfd.is_ok() && readable(&fds[1])) || !crate::util::alive(pid) {
            return Ok(Waited::Exited);
        }
    }
}

/// Stops `pid`: SIGTERM, then SIGKILL after `grace`.
pub fn stop(pid: u32, grace: Duration) {
    crate::util::terminate(Pid::from_raw(pid as i32), grace);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn sh(script: &str, log: &Path) -> u32 {
        spawn(
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            None,
            None,
            log,
        )
        .unwrap()
    }

    #[test]
    fn waiting_ends_on_exit_timeout_or_readiness() {
        let dir = std::env::temp_dir().join(format!("nsvpn-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let (a, b) = UnixDatagram::pair().unwrap();

        // A client that dies early ends the wait at once, not at the timeout.
        let t = Instant::now();
        let pid = sh("echo bye; exit 3", &log);
        assert_eq!(
            wait_ready(&a, pid, Duration::from_secs(10)).unwrap(),
            Waited::Exited
        );
        assert!(t.elapsed() < Duration::from_secs(5));

        // A client that neither dies nor reports runs into the timeout.
        let pid = sh("exec sleep 30", &log);
        let t = Instant::now();
        assert_eq!(
            wait_ready(&a, pid, Duration::from_millis(200)).unwrap(),
            Waited::TimedOut
        );
        assert!(t.elapsed() >= Duration::from_millis(200));

        // A report ends the wait while the client runs on.
        b.send(b"ready").unwrap();
        assert_eq!(
            wait_ready(&a, pid, Duration::from_secs(10)).unwrap(),
            Waited::Ready
        );
        assert!(crate::util::alive(pid));
        stop(pid, Duration::from_secs(1));
        assert!(!crate::util::alive(pid));

        // stdin data reaches the client; its output lands in the log.
        let pid = spawn(
            Path::new("/bin/sh"),
            &["-c".into(), "read pw; echo got $pw".into()],
            Some(b"s3cret\n"),
            None,
            &log,
        )
        .unwrap();
        let (_c, d) = UnixDatagram::pair().unwrap();
        assert_eq!(
            wait_ready(&d, pid, Duration::from_secs(10)).unwrap(),
            Waited::Exited
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("bye") && text.contains("got s3cret"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn blocked_signals(pid: u32) -> String {
        // Read once the child has exec'd: before, it may not have reset the
        // mask it inherited yet.
        let t = Instant::now();
        while crate::util::cmdline(pid)
            .is_none_or(|a| a.first().is_none_or(|c| !c.ends_with(b"sleep")))
            && t.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// While `up` watches the stop signals, a signal ends the wait for the
    /// client at once, and the client itself runs with none blocked.
    #[test]
    fn a_stop_signal_ends_the_wait_and_the_client_has_an_empty_mask() {
        use crate::signals::testing::{raise_later, restore, this_thread};
        use nix::sys::signal::Signal;
        let dir = std::env::temp_dir().join(format!("nsvpn-client-sig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = Watch::new().unwrap();
        let pid = sh("exec sleep 30", &dir.join("log"));
        let mask = blocked_signals(pid);
        let (a, _b) = UnixDatagram::pair().unwrap();
        raise_later(this_thread(), Signal::SIGINT, Duration::from_millis(100));
        let t = Instant::now();
        let waited = wait_or_stop(&a, pid, Duration::from_secs(20), Some(&w));
        let took = t.elapsed();
        restore(w);
        stop(pid, Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(mask, "0000000000000000");
        let e = waited.unwrap_err();
        let i = crate::signals::interruption(&e).unwrap();
        assert_eq!(i.signal, Signal::SIGINT);
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
