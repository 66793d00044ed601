//! `nsvpn hook <openvpn|openconnect> <profile>`: not a user command. The
//! VPN clients run it (see `backend::client::hook`); this file only reports
//! its outcome.

use crate::backend::client::hook::{self, HookMessage};
use crate::names;

/// Runs the hook; the return value is its exit status (non-zero makes
/// openvpn give up, which `up` then reports).
pub fn run(kind: &str, profile: &str) -> i32 {
    match hook::run(kind, profile, std::env::vars().collect()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsvpn hook: error: {e:#}");
            if names::validate_profile_name(profile).is_ok() {
                hook::notify(
                    profile,
                    &HookMessage::Failed {
                        error: format!("{e:#}"),
                    },
                );
            }
            1
        }
    }
}
