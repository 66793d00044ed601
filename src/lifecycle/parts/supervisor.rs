//! A profile's supervisor, for a kind whose client cannot make its tunnel
//! again by itself (IPsec on the userspace path: see
//! `backend::ipsec::reconnect`): one `nsvpn ipsec-supervise <profile>`
//! process, in the host's namespaces, as root, for as long as the profile
//! is up. A part like the idle watcher: `up` makes it once the profile is
//! all there and waits for its word on descriptor 3 (it reads the profile's
//! file, whose path `up` writes on its standard input, and the files it
//! names, as `up` did), `status` shows it, its health is checked (degraded
//! when it is not running: the profile then goes broken instead of
//! reconnecting), and `down` ends it (SIGTERM) before the tunnel.
//!
//! Every second it asks charon for its SA over VICI; once the SA is lost,
//! it reconnects, keeping the namespace and what runs in it. What it does
//! goes to its log, `/run/nsvpn/<profile>/ipsec-supervise.log`, and to
//! syslog.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;

use super::{Check, HELPER_GRACE, Look, Making, Part, helper};
use crate::backend::ipsec::reconnect::{Keeper, LOOK_EVERY, Record};
use crate::backend::{self, Prepared};
use crate::ending::Ending;
use crate::names::{self, Names};
use crate::procs::Procs;
use crate::profile::Profile;
use crate::state::State;
use crate::{paths, signals, util, vlog};

/// The hidden command that supervises.
pub const COMMAND: &str = "ipsec-supervise";
/// Its pid and log files' name in the profile's run directory.
const FILES: &str = "ipsec-supervise";
/// How long `up` waits for its word (it reads the profile's files).
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each of its attempts waits for the gateway (as `up` does).
const ATTEMPT_WAIT: Duration = Duration::from_secs(20);

pub struct Supervisor;

fn find(names: &Names, procs: &Procs) -> Vec<u32> {
    helper::own_processes(procs, COMMAND, &names.profile)
}

/// The profile's running supervisor, by its pid file.
pub fn running(profile: &str) -> Option<u32> {
    util::read_pid(&paths::pid_file(profile, FILES))
        .filter(|pid| helper::is_own(*pid, COMMAND, profile))
}

impl Part for Supervisor {
    fn name(&self) -> &'static str {
        "supervisor"
    }

    fn wanted(&self, st: &State) -> bool {
        backend::supervised(st)
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let t0 = Instant::now();
        let names = cx.names;
        let pid = helper::start_own(
            &names.profile,
            COMMAND,
            FILES,
            Some(cx.profile.path.as_os_str().as_encoded_bytes()),
            READY_TIMEOUT,
            "the profile's supervisor",
        )?;
        cx.own += t0.elapsed();
        vlog!("supervisor runs (pid {pid}, {:?})", t0.elapsed());
        Ok(true)
    }

    /// Without it the profile works until the gateway loses its SA.
    fn check(&self, look: &mut Look<'_>) -> Check {
        if !look.thorough || running(look.profile).is_some() {
            return Check::Fine;
        }
        Check::Degraded(format!(
            "its supervisor is not running: should the gateway restart or stop answering, the \
             profile goes broken instead of reconnecting by itself; the end of {} says why; \
             `nsvpn down {p}` then `nsvpn up {p}` starts it again",
            paths::log_file(look.profile, FILES).display(),
            p = look.profile
        ))
    }

    fn show(&self, st: &State) -> String {
        match running(&st.profile) {
            Some(pid) => format!("nsvpn pid {pid}"),
            None => "nsvpn, not running".into(),
        }
    }

    fn exists(&self, names: &Names, procs: &Procs) -> bool {
        !find(names, procs).is_empty()
    }

    fn stop(&self, names: &Names, _: Option<&State>, procs: &Procs, ending: &mut Ending) {
        for pid in find(names, procs) {
            ending.signal(pid, Signal::SIGTERM, HELPER_GRACE);
        }
    }

    fn remove(&self, names: &Names, _: Option<&State>, _: &mut Vec<String>) {
        let _ = std::fs::remove_file(paths::pid_file(&names.profile, FILES));
        Record::remove(&names.profile);
    }
}

/// A line in the supervisor's log and in syslog.
fn say(line: &str) {
    println!("nsvpn: {line}");
    util::syslog(line);
}

/// Reads the profile as `up` did: its file, whose path `up` wrote on
/// standard input, and the files it names.
fn prepare(profile: &str) -> Result<Prepared> {
    let mut path = Vec::new();
    std::io::stdin()
        .read_to_end(&mut path)
        .context("cannot read the profile's path on standard input")?;
    let path = Path::new(std::ffi::OsStr::from_bytes(&path));
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} is not a profile's file", path.display()))?;
    let p = Profile::load(dir, profile)?;
    backend::prepare(&p, ATTEMPT_WAIT)
}

use std::os::unix::ffi::OsStrExt;

/// `nsvpn ipsec-supervise <profile>`, the process itself: root only, run
/// by `up`. Reads the profile, says "ok" or the error on descriptor 3,
/// then supervises until SIGTERM, or until the profile is gone.
pub fn supervise(profile: &str) -> Result<()> {
    let mut word = helper::word_pipe();
    let ready = (|| -> Result<_> {
        if !nix::unistd::getuid().is_root() || !nix::unistd::geteuid().is_root() {
            bail!("`nsvpn {COMMAND}` is run by `nsvpn up` as root, not by hand");
        }
        names::validate_profile_name(profile)?;
        State::load(profile)
            .ok_or_else(|| anyhow!("profile {profile} has no state: it is not being brought up"))?;
        let prepared = prepare(profile)?;
        let Prepared::IpSec(p) = prepared else {
            bail!("profile {profile} is not an IPsec profile");
        };
        let watch = signals::watch()?;
        Ok((Keeper::new(profile, p), watch))
    })();
    let (mut keeper, watch) = match ready {
        Ok(r) => r,
        Err(e) => {
            if let Some(w) = word.as_mut() {
                let _ = w.write_all(format!("{e:#}").as_bytes());
            }
            return Err(e);
        }
    };
    if let Some(mut w) = word.take() {
        w.write_all(b"ok")
            .context("cannot tell `up` the supervisor runs")?;
    }
    println!(
        "nsvpn: supervising profile {profile}: asking charon for its SA every {} ms, making a \
         new one when the gateway lost it",
        LOOK_EVERY.as_millis()
    );
    let end = |why: String| {
        Record::remove(profile);
        println!("nsvpn: {why}");
        Ok(())
    };
    loop {
        if watch.sleep(LOOK_EVERY).is_err() {
            let by = watch.caught().map_or("a signal".into(), |s| s.to_string());
            return end(format!("stopped by {by}"));
        }
        let Some(st) = State::load(profile) else {
            return end(format!("profile {profile} has no state any more; stopping"));
        };
        // `up` makes the supervisor before it marks the state complete.
        if !st.complete {
            continue;
        }
        if let Err(e) = keeper.look(&st, watch, &say) {
            if watch.caught().is_some() {
                continue;
            }
            println!("nsvpn: {e:#}");
        }
    }
}
