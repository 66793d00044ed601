//! `nsvpn forward <profile> [BIND:]PORT:HOST:HOSTPORT...`: like `ssh -L`,
//! listen on the host and open each connection from inside the profile
//! (the library is `forward.rs`). Runs in the foreground until SIGINT,
//! SIGTERM or SIGHUP, then exits 128 + the signal, as a shell reports a
//! program a signal ended; its own errors are status 1.

use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use crate::caller::{Action, Caller, Mode};
use crate::exec::{self, RealSys};
use crate::forward::{self, Plan};
use crate::lifecycle::{self, Entering, open_entering};
use crate::names::{self, Names};
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
    let who = Entering {
        word: "forward",
        noun: "forward",
        while_reconnecting: "connections through the forward fail until the VPN is back",
    };
    let ns = open_entering(caller, dir, &names, &who, &lifecycle::Options::default())?;
    let plan = Plan {
        profile: name,
        netns: &names.netns,
        ns: ns.as_fd(),
        etc: exec::EtcFiles::of(name, &names.netns),
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
