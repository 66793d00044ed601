//! `nsvpn idle-watch <profile>`: not a user command. `up` runs it for a
//! profile with an `idle_timeout` (the watcher part,
//! `lifecycle::parts::watcher`): it takes the profile down once idle;
//! `down` ends it with SIGTERM.

use crate::lifecycle::parts;

/// Returns the exit status.
pub fn run(profile: &str) -> u8 {
    match parts::watch_idle(profile) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsvpn {}: error: {e:#}", parts::IDLE_WATCH);
            1
        }
    }
}
