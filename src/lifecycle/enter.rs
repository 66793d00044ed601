//! Entering a profile for a command (`exec`, `shell`, `forward`): its
//! namespace opened, the profile brought up first if it is down. A profile
//! with an `idle_timeout` hears of the command before it is checked once
//! more: if its watcher took it down meanwhile, this waits for the teardown
//! to end and starts again (see `idle.rs`).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::health::{Health, health};
use super::up::{Options, up};
use crate::caller::Caller;
use crate::idle;
use crate::names::Names;
use crate::netns;
use crate::profile::Profile;

/// What enters, for the messages.
pub struct Entering<'a> {
    /// The word the idle watcher hears: "exec", "shell" or "forward".
    pub word: &'a str,
    /// "command", "forward": what was about to enter.
    pub noun: &'a str,
    /// What a reconnecting VPN means for it, after the warning.
    pub while_reconnecting: &'a str,
}

/// The profile's namespace, opened, with the profile brought up (with
/// `opts`) if it is down.
pub fn open_entering(
    caller: &Caller,
    dir: &Path,
    names: &Names,
    who: &Entering<'_>,
    opts: &Options,
) -> Result<OwnedFd> {
    let name = &names.profile;
    for _ in 0..3 {
        idle::wait_while_going_down(name);
        let ns = match health(name) {
            Health::Up(ns) => ns,
            Health::Reconnecting(ns, why) => {
                eprintln!(
                    "nsvpn: warning: profile {name}: {why}; {}",
                    who.while_reconnecting
                );
                ns
            }
            Health::Down => {
                let profile = Profile::load(dir, name)?;
                caller
                    .become_root_for("up", name)
                    .with_context(|| format!("profile {name} is down"))?;
                eprintln!("nsvpn: profile {name} is down; bringing it up");
                up(&profile, opts)?;
                netns::open(&names.netns).with_context(|| format!("profile {name} went down"))?
            }
            Health::Broken(why) => bail!(
                "profile {name} is broken: {why}. Nothing inside can reach the network; run \
                 `nsvpn down {name}` and `nsvpn up {name}` (`nsvpn status {name}` tells more)"
            ),
        };
        idle::announce(name, who.word);
        if idle::entering(name, &names.netns, ns.as_fd()) {
            return Ok(ns);
        }
    }
    bail!(
        "profile {name} went down by itself (idle_timeout) each time this {} was about to \
         enter it; run it again",
        who.noun
    )
}
