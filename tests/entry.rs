//! nsvpn's entry point skips std's runtime start-up (`no_main`, see
//! src/main.rs) and does what of it nsvpn relies on itself: checked here on
//! the real binary, without root.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

/// Runs nsvpn with `args`, descriptor 1 closed.
fn with_stdout_closed(args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nsvpn"));
    c.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: close is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            nix::libc::close(1);
            Ok(())
        });
    }
    c.output().unwrap()
}

/// A closed standard output: nsvpn still runs, and says nothing of it.
#[test]
fn a_closed_stdout_is_no_failure() {
    let out = with_stdout_closed(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// SIGPIPE is ignored in nsvpn (a write to a closed pipe is an error it
/// reports), as under std's runtime: nsvpn is not killed by it.
#[test]
fn sigpipe_does_not_kill_nsvpn() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nsvpn"));
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let status = c
        .args(["completions", "bash"])
        .stdout(Stdio::from(w))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_ne!(status.signal(), Some(13), "killed by SIGPIPE: {status:?}");
}
