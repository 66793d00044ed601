//! `nsvpn doctor [<profile>] [--target HOST[:PORT]] [--json]`: find what is
//! wrong with the host's or a profile's routes, DNS, MTU, tunnel and
//! leftovers; exit 1 when something is.

use std::path::Path;

use anyhow::{Result, bail};

use crate::caller::{Caller, Mode};
use crate::doctor::{self, gather};
use crate::names;

/// Runs doctor and prints its report; the exit status is the report's (0
/// when nothing is wrong, 1 when something is).
pub fn run(
    caller: &Caller,
    dir: &Path,
    profile: Option<&str>,
    target: Option<&str>,
    json: bool,
) -> Result<u8> {
    if caller.mode == Mode::FileCaps {
        bail!(
            "nsvpn doctor needs root (it reads every profile's state and probes with raw ICMP): \
             run it with sudo"
        );
    }
    let report = match profile {
        None => {
            if target.is_some() {
                bail!("--target needs a profile: nsvpn doctor <profile> --target HOST");
            }
            gather::host(dir)?
        }
        Some(p) => {
            names::validate_profile_name(p)?;
            gather::profile(dir, p, target)?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", doctor::render(&report));
    }
    Ok(report.exit_code())
}
