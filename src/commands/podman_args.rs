//! `nsvpn podman-args <profile>`: print the `podman run` flags that put a
//! container in the profile (see `session::podman`). On error the flags
//! still go to stdout, with the error on stderr and status 1, so that
//! `podman run $(nsvpn podman-args p) ...` fails or runs without a network,
//! never on the host's.

use std::path::Path;

use anyhow::{Result, anyhow};

use crate::caller::{Action, Caller, Mode};
use crate::names::{self, Names};
use crate::paths;
use crate::profile::Profile;
use crate::session::podman;

pub fn run(caller: Option<&Caller>, dir: &Path, profile: &str) -> Result<()> {
    if let Err(e) = names::validate_profile_name(profile) {
        println!("{}", podman::NO_NETWORK);
        return Err(e);
    }
    print!("{}", podman::render(profile));
    let p = Profile::load(dir, profile)?;
    if let Some(caller) = caller.filter(|c| c.mode == Mode::FileCaps) {
        caller.check_access(&p, Action::Exec)?;
    }
    // Up as far as a container needs: the namespace and its files (only
    // root can look into the namespace; a broken tunnel leaves a sealed one).
    let names = Names::for_profile(profile);
    let etc = paths::netns_etc(&names.netns);
    if paths::netns(&names.netns).exists() && etc.join("resolv.conf").exists() {
        return Ok(());
    }
    Err(anyhow!(
        "profile {profile} is down: bring it up first (`nsvpn up {profile}` or \
         `systemctl start nsvpn@{profile}`); the flags name its namespace and files, which \
         exist only while it is up"
    ))
}
