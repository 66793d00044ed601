//! `nsvpn down <profile> [--kill]`: disconnect and remove every trace.

use std::path::Path;

use anyhow::Result;

use crate::caller::{Action, Caller, Mode};
use crate::profile::Profile;

use crate::names::{self, Names};
use crate::state::Lock;
use crate::teardown;

pub fn run(caller: &Caller, dir: &Path, name: &str, kill: bool) -> Result<()> {
    names::validate_profile_name(name)?;
    if caller.mode == Mode::FileCaps {
        caller.check_access(&Profile::load(dir, name)?, Action::Down)?;
        caller.become_root_for("down", name)?;
    }
    // Root needs no profile file: everything is found by name, so a profile
    // whose file was edited or removed can still be taken down.
    let names = Names::for_profile(name);
    let _lock = Lock::acquire(name)?;
    if !teardown::any_trace(&names) {
        println!("nsvpn: profile {name} is not up; nothing to do");
        return Ok(());
    }
    teardown::teardown(&names, kill)?;
    println!("nsvpn: profile {name} is down");
    Ok(())
}
