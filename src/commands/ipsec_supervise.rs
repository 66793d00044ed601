//! `nsvpn ipsec-supervise <profile>`: not a user command. `up` runs it for
//! an IPsec profile (the supervisor part, `lifecycle::parts::supervisor`):
//! it reconnects the profile once the gateway lost its SA; `down` ends it
//! with SIGTERM.

use crate::lifecycle::parts;

/// Returns the exit status.
pub fn run(profile: &str) -> u8 {
    match parts::supervise(profile) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsvpn {}: error: {e:#}", parts::IPSEC_SUPERVISE);
            1
        }
    }
}
