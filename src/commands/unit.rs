//! `nsvpn unit <profile> <service>`: print the systemd drop-in that makes
//! an existing service join the profile (see `session::unit`).

use std::path::Path;

use anyhow::Result;

use crate::caller::{Action, Caller, Mode};
use crate::profile::Profile;
use crate::session::unit;

pub fn run(caller: Option<&Caller>, dir: &Path, profile: &str, service: &str) -> Result<()> {
    let service = unit::service_name(service)?;
    // A drop-in for a profile that does not exist would only fail later.
    let p = Profile::load(dir, profile)?;
    if let Some(caller) = caller.filter(|c| c.mode == Mode::FileCaps) {
        caller.check_access(&p, Action::Status)?;
    }
    print!("{}", unit::render(profile, &service));
    Ok(())
}
