//! Where a profile stands: the one judgement of up, reconnecting or broken
//! behind `status`, `list` and `exec`.

use std::os::fd::{AsFd, OwnedFd};

use crate::backend::{self, Reconnect};
use crate::netns;
use crate::state::State;
use crate::util::{self, now_unix};

/// Where a profile stands: the one definition behind `status`, `list` and
/// `exec`.
pub enum Health {
    Down,
    /// Up and working; the namespace, opened.
    Up(OwnedFd),
    /// Up, but the VPN client lost its connection and is making it again:
    /// the namespace stays sealed meanwhile. The text says since when and
    /// the last error.
    Reconnecting(OwnedFd, String),
    /// Traces exist but the tunnel cannot work; the reason says what to do.
    Broken(String),
}

impl Health {
    /// The word `status` and `list` show for it.
    pub fn word(&self) -> &'static str {
        match self {
            Health::Down => "down",
            Health::Up(_) => "up",
            Health::Reconnecting(..) => "reconnecting",
            Health::Broken(_) => "broken",
        }
    }
}

/// What `status` and `list` call a profile: its health's word, or
/// "invalid" for one that is down and whose profile file exists but does
/// not load (`up` would refuse it).
pub fn state_word(health: &Health, file_loads: bool) -> &'static str {
    match health {
        Health::Down if !file_loads => "invalid",
        h => h.word(),
    }
}

/// The profile's health, for `exec`: the client is asked whether it
/// reconnects only when the tunnel device is gone (openvpn logs every
/// management connection, and `exec` may run often).
pub fn health(profile: &str) -> Health {
    judge(profile, false).0
}

/// The profile's health, and the client's reconnect if it is reconnecting,
/// for `status` and `list`: the client is always asked.
pub fn assess(profile: &str) -> (Health, Option<Reconnect>) {
    judge(profile, true)
}

fn judge(profile: &str, always_ask: bool) -> (Health, Option<Reconnect>) {
    let Some(st) = State::load(profile) else {
        return (Health::Down, None);
    };
    let st = &st;
    if !st.complete {
        let why = "its `up` did not finish (it is running now, or it crashed)";
        return (Health::Broken(why.into()), None);
    }
    if let Some(pid) = st.pid
        && !util::alive(pid)
    {
        return (
            Health::Broken(format!(
                "its VPN client ({} pid {pid}) has exited: it is not running, so the tunnel is gone and the namespace stays sealed until `nsvpn down {profile}`",
                backend::program(st)
            )),
            None,
        );
    }
    let ns = match netns::open(&st.names.netns) {
        Ok(ns) => ns,
        Err(e) => return (Health::Broken(format!("{e:#}")), None),
    };
    // Every tunnel is a link in the namespace (for kernel WireGuard it is all
    // there is to watch). A client's link may be gone only while it
    // reconnects.
    let present = match netns::has_link(ns.as_fd(), &st.names.tunnel) {
        Ok(p) => p,
        Err(e) => return (Health::Broken(format!("{e:#}")), None),
    };
    let reconnect = if always_ask || !present {
        backend::reconnecting(profile, st)
    } else {
        Ok(None)
    };
    let health = verdict(profile, st, ns, present, &reconnect);
    (health, reconnect.ok().flatten())
}

/// Up, reconnecting or broken, once the namespace is known to exist.
fn verdict(
    profile: &str,
    st: &State,
    ns: OwnedFd,
    present: bool,
    reconnect: &Result<Option<Reconnect>, String>,
) -> Health {
    let program = backend::program(st);
    match reconnect {
        Ok(Some(r)) => Health::Reconnecting(
            ns,
            format!(
                "{program} {}; the namespace stays sealed meanwhile",
                r.describe(now_unix())
            ),
        ),
        _ if present => Health::Up(ns),
        Err(e) => Health::Reconnecting(
            ns,
            format!(
                "its tunnel device {} is gone, and nsvpn cannot ask {program} whether it is \
                 reconnecting ({e}); `sudo nsvpn status {profile}` tells",
                st.names.tunnel
            ),
        ),
        Ok(None) => {
            let client = if matches!(st.kind.as_str(), "openvpn" | "openconnect") {
                format!(" and {program} is not reconnecting")
            } else {
                String::new()
            };
            Health::Broken(format!(
                "its tunnel device {} is gone from the namespace{client}; the namespace stays sealed \
                 until `nsvpn down {profile}`",
                st.names.tunnel
            ))
        }
    }
}
