//! `nsvpn down <profile> [--kill]`: disconnect and remove every trace.

use std::path::Path;

use anyhow::Result;

use crate::caller::{Action, Caller, Mode};
use crate::profile::{self, Profile};

use crate::lifecycle::teardown;
use crate::names::{self, Names};
use crate::signals;
use crate::state::Lock;

pub fn run(caller: &Caller, dir: &Path, name: &str, kill: bool) -> Result<()> {
    names::validate_profile_name(name)?;
    if caller.mode == Mode::FileCaps {
        caller.check_access(&Profile::load(dir, name)?, Action::Down)?;
        caller.become_root_for("down", name)?;
    }
    // Root needs no profile file: everything is found by name, so a profile
    // whose file was edited or removed can still be taken down. A name that
    // is neither a profile nor left anything behind is a typo, not a no-op.
    let names = Names::for_profile(name);
    profile::require_known(dir, name, || teardown::any_trace(&names))?;
    // A teardown cut in half would leave half a profile: SIGINT, SIGTERM and
    // SIGHUP wait until it is done (they can still end the wait for the lock).
    signals::watch()?;
    let _lock = Lock::acquire(name)?;
    if !teardown::any_trace(&names) {
        println!("nsvpn: profile {name} is not up; nothing to do");
        return Ok(());
    }
    let ended = teardown::teardown(&names, kill)?;
    print!("{}", teardown::render_ended(&ended, teardown::KILL_GRACE));
    println!("nsvpn: profile {name} is down");
    Ok(())
}
