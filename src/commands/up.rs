//! `nsvpn up <profile>`: connect; return once the tunnel carries traffic.

use std::path::Path;

use anyhow::Result;

use crate::caller::{Action, Caller};
use crate::lifecycle::{Options, Outcome, up};
use crate::profile::Profile;

/// Bringing profiles up and down writes root's files (/run/netns,
/// /run/nsvpn, /etc/netns) and reads root-only secrets, which the file
/// capabilities do not allow.
pub fn run(caller: &Caller, dir: &Path, name: &str, opts: &Options) -> Result<()> {
    let profile = Profile::load(dir, name)?;
    caller.check_access(&profile, Action::Up)?;
    caller.become_root_for("up", name)?;
    match up(&profile, opts)? {
        Outcome::AlreadyUp => println!("nsvpn: profile {name} is already up"),
        Outcome::Up { what, own, waited } => println!(
            "nsvpn: profile {name} is up ({what}; nsvpn's own work {} ms, waiting for the VPN {} ms). Run: nsvpn exec {name} -- <command>",
            own.as_millis(),
            waited.as_millis()
        ),
    }
    Ok(())
}
