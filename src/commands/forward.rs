//! `nsvpn forward <profile> [BIND:]PORT:HOST:HOSTPORT...`: like `ssh -L`,
//! listen on the host and open each connection from inside the profile
//! (the library is `forward.rs`). Runs in the foreground until SIGINT,
//! SIGTERM or SIGHUP, then exits 128 + the signal, as a shell reports a
//! program a signal ended; its own errors are status 1.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::caller::{Action, Caller, Mode};
use crate::exec::{self, RealSys};
use crate::forward::{self, Plan};
use crate::idle;
use crate::lifecycle::{self, Health};
use crate::names::{self, Names};
use crate::netns;
use crate::profile::Profile;
use crate::signals::{self, Interrupted};

/// Returns the exit status.
pub fn run(caller: &Caller, dir: &Path, name: &str, specs: &[String]) -> u8 {
    match forward(caller, dir, name, specs) {
        Ok((signal, cut)) => {
            let s = if cut == 1 { "" } else { "s" };
            eprintln!(
                "nsvpn: forward stopped by {signal}: listeners closed, {cut} open connection{s} cut"
            );
            Interrupted {
                signal,
                then: String::new(),
            }
            .exit_code()
        }
        Err(e) => {
            eprintln!("nsvpn: error: {e:#}");
            1
        }
    }
}

fn forward(caller: &Caller, dir: &Path, name: &str, specs: &[String]) -> Result<(Signal, usize)> {
    names::validate_profile_name(name)?;
    let specs = forward::parse_all(specs)?;
    // The same rule as exec: without sudo, the profile's [access] decides.
    if caller.mode == Mode::FileCaps {
        caller.check_access(&Profile::load(dir, name)?, Action::Forward)?;
    }
    let names = Names::for_profile(name);
    let ns = open_entering(caller, dir, name, &names)?;
    let plan = Plan {
        profile: name,
        netns: &names.netns,
        ns: ns.as_fd(),
        layer: crate::paths::netns_etc(&names.netns),
        binds: exec::binds_for(&names.netns),
        hidden: exec::hidden_dirs(),
        target: caller.user.clone(),
        specs: &specs,
    };
    // The mount namespace, the setns and the drop cover the whole process
    // only while it has one thread (capabilities and no_new_privs are per
    // thread): nothing before this may have left one running.
    if !forward::single_threaded() {
        bail!("internal error: nsvpn forward must set up with one thread, and has more");
    }
    let listeners = forward::prepare(&mut RealSys, &plan)?;
    // Before any thread starts, so that every thread has them blocked.
    let watch = signals::watch()?;
    for s in &specs {
        println!("{}", s.describe(name));
    }
    let cut = forward::serve(name, &specs, listeners, watch.fd(), None)?;
    Ok((watch.caught().unwrap_or(Signal::SIGTERM), cut))
}

/// The profile's namespace, opened, with the profile brought up first if
/// it is down, as `exec` does (and, as there, a teardown by the idle
/// watcher under way is waited for; see `idle.rs`).
fn open_entering(caller: &Caller, dir: &Path, name: &str, names: &Names) -> Result<OwnedFd> {
    for _ in 0..3 {
        idle::wait_while_going_down(name);
        let ns = match lifecycle::health(name) {
            Health::Up(ns) => ns,
            Health::Reconnecting(ns, why) => {
                eprintln!(
                    "nsvpn: warning: profile {name}: {why}; connections through the forward fail until the VPN is back"
                );
                ns
            }
            Health::Down => {
                let profile = Profile::load(dir, name)?;
                caller
                    .become_root_for("up", name)
                    .with_context(|| format!("profile {name} is down"))?;
                eprintln!("nsvpn: profile {name} is down; bringing it up");
                lifecycle::up(&profile, &lifecycle::Options::default())?;
                netns::open(&names.netns).with_context(|| format!("profile {name} went down"))?
            }
            Health::Broken(why) => bail!(
                "profile {name} is broken: {why}. Nothing inside can reach the network; run \
                 `nsvpn down {name}` and `nsvpn up {name}` (`nsvpn status {name}` tells more)"
            ),
        };
        idle::announce(name, "forward");
        if idle::entering(name, &names.netns, ns.as_fd()) {
            return Ok(ns);
        }
    }
    bail!(
        "profile {name} went down by itself (idle_timeout) each time this forward was about to \
         enter it; run it again"
    )
}
