//! What the helper programs a split profile runs (the user-mode stack, the
//! resolver) share: started detached with a pid file, checked by pid, found
//! by name after a crash, stopped.

use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use nix::sys::signal::Signal;

use anyhow::{Result, anyhow};

use super::HELPER_GRACE;
use crate::backend::client::{self, Within};
use crate::ending::Ending;
use crate::names::Names;
use crate::paths;
use crate::procs::Procs;
use crate::util;

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
