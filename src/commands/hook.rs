//! `nsvpn hook <openvpn|openconnect> <profile>`: not a user command. openvpn
//! runs it as its `--up` script and openconnect as its vpnc-script, as root
//! in the host namespace. It moves the client's tunnel device into the
//! profile's namespace, applies what the VPN provides (or the profile's
//! overrides), records it for `status`, and tells the waiting `up`.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};

use crate::backend::openconnect::{self, Reason};
use crate::backend::openvpn;
use crate::names;
use crate::paths;
use crate::state::State;
use crate::tunnel::{self, HookMessage, TunnelRecord, TunnelSetup};

/// Runs the hook; the return value is its exit status (non-zero makes
/// openvpn give up, which `up` then reports).
pub fn run(kind: &str, profile: &str) -> i32 {
    match hook(kind, profile, std::env::vars().collect()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsvpn hook: error: {e:#}");
            if names::validate_profile_name(profile).is_ok() {
                tunnel::notify(
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

fn hook(kind: &str, profile: &str, env: BTreeMap<String, String>) -> Result<()> {
    if !nix::unistd::getuid().is_root() || !nix::unistd::geteuid().is_root() {
        bail!(
            "`nsvpn hook` is run by openvpn or openconnect, as root, for a profile nsvpn is bringing up; it is not a command to run by hand"
        );
    }
    names::validate_profile_name(profile)?;
    let st = State::load(profile).ok_or_else(|| {
        anyhow!(
            "profile {profile} is not being brought up by nsvpn (no state in {})",
            paths::profile_dir(profile).display()
        )
    })?;
    if st.kind != kind {
        bail!("profile {profile} is a {} profile, not {kind}", st.kind);
    }
    let t0 = Instant::now();
    let (setup, event) = match kind {
        "openvpn" => {
            let script_type = env.get("script_type").map(String::as_str).unwrap_or("");
            if script_type != "up" {
                bail!(
                    "openvpn called the hook with script_type={script_type:?}; nsvpn only installs it as the up script"
                );
            }
            let log = std::fs::read_to_string(paths::log_file(profile, openvpn::PROGRAM))
                .unwrap_or_default();
            let pushed = openvpn::last_push_reply(&log);
            let cfg = st.openvpn.clone().unwrap_or_default();
            let setup =
                openvpn::setup_from_env(&env, pushed.as_deref(), &cfg).map_err(|e| anyhow!(e))?;
            let event = if env.get("script_context").is_some_and(|c| c == "restart") {
                "restart"
            } else {
                "connect"
            };
            (setup, event)
        }
        "openconnect" => {
            let reason = env.get("reason").map(String::as_str).unwrap_or("");
            match Reason::parse(reason).map_err(|e| anyhow!(e))? {
                Reason::PreInit => return Ok(()),
                Reason::AttemptReconnect => {
                    return TunnelRecord::mark(profile, "attempt-reconnect", false);
                }
                Reason::Disconnect => return TunnelRecord::mark(profile, "disconnect", false),
                Reason::Connect => (
                    openconnect::setup_from_env(&env).map_err(|e| anyhow!(e))?,
                    "connect",
                ),
                Reason::Reconnect => (
                    openconnect::setup_from_env(&env).map_err(|e| anyhow!(e))?,
                    "reconnect",
                ),
            }
        }
        other => bail!("unknown hook kind {other:?}"),
    };
    apply(&st, &setup, event, t0)
}

fn apply(st: &State, setup: &TunnelSetup, event: &str, t0: Instant) -> Result<()> {
    let rec = tunnel::apply(&st.names, setup, &st.overrides, event)?;
    rec.save(&st.profile)?;
    let summary = format!(
        "tunnel {}{}",
        rec.addresses.join(", "),
        if rec.routes.iter().any(|r| r == "0.0.0.0/0") {
            ", all traffic".to_string()
        } else {
            format!(", routes {}", rec.routes.join(" "))
        }
    );
    eprintln!(
        "nsvpn hook: {event}: {} moved into {}: {summary}",
        setup.device, st.names.netns
    );
    tunnel::notify(
        &st.profile,
        &HookMessage::Connected {
            own_ms: t0.elapsed().as_millis() as u64,
            summary,
        },
    );
    Ok(())
}
