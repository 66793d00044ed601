//! `nsvpn down <profile> [--kill]`: disconnect and remove every trace.

use anyhow::Result;

use crate::names::{self, Names};
use crate::state::Lock;
use crate::teardown;

pub fn run(name: &str, kill: bool) -> Result<()> {
    // The profile file is not needed: everything is found by name, so a
    // profile whose file was edited or removed can still be taken down.
    names::validate_profile_name(name)?;
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
