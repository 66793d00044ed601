//! `nsvpn kept-forwards <profile>`: not a user command. `up` runs it to
//! keep a profile's `[forward] ports` (the forwards part,
//! `lifecycle::parts::forwards`); `down` ends it with SIGTERM.

use crate::lifecycle::parts;

/// Returns the exit status.
pub fn run(profile: &str) -> u8 {
    match parts::serve_kept(profile) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsvpn {}: error: {e:#}", parts::KEPT_FORWARDS);
            1
        }
    }
}
