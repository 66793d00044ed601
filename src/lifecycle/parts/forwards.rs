//! A profile's kept forwards (`[forward] ports`): one `nsvpn kept-forwards
//! <profile>` process that does what `nsvpn forward` does, for as long as
//! the profile is up. It listens on the host, enters the namespace and
//! drops to `nobody` (it needs no privilege once its sockets exist, and
//! belongs to no user: `up` may run from systemd); `down` ends it with
//! SIGTERM, which closes its listeners and cuts its connections.
//!
//! `up` waits for its word on a pipe (its descriptor 3): "ok" once it
//! listens, else the error (a port in use, a name that does not resolve
//! inside), which fails `up` and rolls the profile back.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;

use super::{Check, HELPER_GRACE, Look, Making, Part, helper};
use crate::ending::Ending;
use crate::exec::{self, RealSys};
use crate::forward::{self, Plan};
use crate::names::{self, Names};
use crate::procs::Procs;
use crate::state::State;
use crate::{idle, netns, paths, signals, util, vlog};

/// The hidden command that serves the forwards.
pub const COMMAND: &str = "kept-forwards";
/// Its pid and log files' name in the profile's run directory.
const FILES: &str = "forwards";
/// How long `up` waits for it to listen: a name may take a DNS timeout or
/// two to fail.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Forwards;

/// The profile's forwarder processes.
fn find(names: &Names, procs: &Procs) -> Vec<u32> {
    helper::own_processes(procs, COMMAND, &names.profile)
}

/// The running forwarder, by its pid file (and that pid's command line).
fn running(names: &Names) -> Option<u32> {
    util::read_pid(&paths::pid_file(&names.profile, FILES))
        .filter(|pid| helper::is_own(*pid, COMMAND, &names.profile))
}

impl Part for Forwards {
    fn name(&self) -> &'static str {
        "forwards"
    }

    fn wanted(&self, st: &State) -> bool {
        !st.overrides.forwards.is_empty()
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let t0 = Instant::now();
        let names = cx.names;
        let pid = helper::start_own(
            &names.profile,
            COMMAND,
            FILES,
            None,
            READY_TIMEOUT,
            "the profile's [forward] ports",
        )?;
        cx.own += t0.elapsed();
        vlog!("forwards listen (pid {pid}, {:?})", t0.elapsed());
        Ok(true)
    }

    /// Without them the profile still works; only the host's ports are gone.
    fn check(&self, look: &mut Look<'_>) -> Check {
        if !look.thorough || running(&look.st.names).is_some() {
            return Check::Fine;
        }
        Check::Degraded(format!(
            "its forwards ([forward] ports) are not running: nothing listens on {}; the end of \
             {} says why; `nsvpn down {p}` then `nsvpn up {p}` starts them again",
            listens(look.st).join(", "),
            paths::log_file(look.profile, FILES).display(),
            p = look.profile
        ))
    }

    fn show(&self, st: &State) -> String {
        match running(&st.names) {
            Some(pid) => format!("nsvpn pid {pid}"),
            None => "nsvpn, not running".into(),
        }
    }

    fn processes(&self, names: &Names, procs: &Procs) -> Vec<u32> {
        find(names, procs)
    }

    fn exists(&self, names: &Names, procs: &Procs) -> bool {
        !find(names, procs).is_empty()
    }

    // First to be asked: it lives in the namespace and holds the host's
    // ports.
    fn stop(&self, names: &Names, _: Option<&State>, procs: &Procs, ending: &mut Ending) {
        for pid in find(names, procs) {
            ending.signal(pid, Signal::SIGTERM, HELPER_GRACE);
        }
    }

    fn remove(&self, names: &Names, _: Option<&State>, _: &mut Vec<String>) {
        let _ = std::fs::remove_file(paths::pid_file(&names.profile, FILES));
    }
}

/// Where the forwards of `st` listen.
fn listens(st: &State) -> Vec<String> {
    forward::parse_all(&st.overrides.forwards)
        .map(|specs| specs.iter().map(|s| s.listen.to_string()).collect())
        .unwrap_or_default()
}

/// `nsvpn kept-forwards <profile>`, the process itself: root only, run by
/// `up`. Sets the forwards up as `nsvpn forward` does (as `nobody`), says
/// "ok" or the error on descriptor 3, then serves until SIGTERM.
pub fn serve_kept(profile: &str) -> Result<()> {
    let mut word = helper::word_pipe();
    let ready = (|| -> Result<_> {
        if !nix::unistd::getuid().is_root() || !nix::unistd::geteuid().is_root() {
            bail!("`nsvpn {COMMAND}` is run by `nsvpn up` as root, not by hand");
        }
        names::validate_profile_name(profile)?;
        let st = State::load(profile)
            .ok_or_else(|| anyhow!("profile {profile} has no state: it is not being brought up"))?;
        let specs = forward::parse_all(&st.overrides.forwards)?;
        let ns = netns::open(&st.names.netns)?;
        let plan = Plan {
            profile,
            netns: &st.names.netns,
            ns: ns.as_fd(),
            etc: exec::EtcFiles::of(profile, &st.names.netns),
            hidden: exec::hidden_dirs(),
            target: crate::user::nobody()?,
            specs: &specs,
        };
        if !forward::single_threaded() {
            bail!("internal error: the forwarder must set up with one thread, and has more");
        }
        let listeners = forward::prepare(&mut RealSys, &plan)?;
        let watch = signals::watch()?;
        // A profile that goes down when idle hears of each connection.
        let announcer = st
            .overrides
            .idle_timeout
            .map(|t| idle::Announcer::new(profile, Duration::from_secs(t)))
            .transpose()?;
        Ok((specs, listeners, watch, announcer))
    })();
    let (specs, listeners, watch, announcer) = match ready {
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
            .context("cannot tell `up` the forwards listen")?;
    }
    for s in &specs {
        println!("{}", s.describe(profile));
    }
    let cut = forward::serve(profile, &specs, listeners, watch.fd(), announcer)?;
    println!("nsvpn: forwards stopped: listeners closed, {cut} open connection(s) cut");
    Ok(())
}
