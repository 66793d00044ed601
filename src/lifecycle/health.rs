//! Where a profile stands: the one judgement of up, reconnecting or broken
//! behind `status`, `list` and `exec`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::Result;

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
    judge(&Machine, profile, false).0
}

/// The profile's health, and the client's reconnect if it is reconnecting,
/// for `status` and `list`: the client is always asked.
pub fn assess(profile: &str) -> (Health, Option<Reconnect>) {
    judge(&Machine, profile, true)
}

/// What judging a profile's health reads from the machine (a fake in the
/// unit tests, as `exec.rs` has its recording `Sys`).
pub trait Probe {
    fn state(&self, profile: &str) -> Option<State>;
    fn alive(&self, pid: u32) -> bool;
    fn open_netns(&self, name: &str) -> Result<OwnedFd>;
    fn has_link(&self, ns: BorrowedFd<'_>, name: &str) -> Result<bool>;
    fn reconnecting(&self, profile: &str, st: &State) -> Result<Option<Reconnect>, String>;
}

/// The real machine.
pub struct Machine;

impl Probe for Machine {
    fn state(&self, profile: &str) -> Option<State> {
        State::load(profile)
    }
    fn alive(&self, pid: u32) -> bool {
        util::alive(pid)
    }
    fn open_netns(&self, name: &str) -> Result<OwnedFd> {
        netns::open(name)
    }
    fn has_link(&self, ns: BorrowedFd<'_>, name: &str) -> Result<bool> {
        netns::has_link(ns, name)
    }
    fn reconnecting(&self, profile: &str, st: &State) -> Result<Option<Reconnect>, String> {
        backend::reconnecting(profile, st)
    }
}

pub fn judge(m: &impl Probe, profile: &str, always_ask: bool) -> (Health, Option<Reconnect>) {
    let Some(st) = m.state(profile) else {
        return (Health::Down, None);
    };
    let st = &st;
    if !st.complete {
        let why = "its `up` did not finish (it is running now, or it crashed)";
        return (Health::Broken(why.into()), None);
    }
    if let Some(pid) = st.pid
        && !m.alive(pid)
    {
        return (
            Health::Broken(format!(
                "its VPN client ({} pid {pid}) has exited: it is not running, so the tunnel is gone and the namespace stays sealed until `nsvpn down {profile}`",
                backend::program(st)
            )),
            None,
        );
    }
    let ns = match m.open_netns(&st.names.netns) {
        Ok(ns) => ns,
        Err(e) => return (Health::Broken(format!("{e:#}")), None),
    };
    // Every tunnel is a link in the namespace (for kernel WireGuard it is all
    // there is to watch). A client's link may be gone only while it
    // reconnects.
    let present = match m.has_link(ns.as_fd(), &st.names.tunnel) {
        Ok(p) => p,
        Err(e) => return (Health::Broken(format!("{e:#}")), None),
    };
    let reconnect = if always_ask || !present {
        m.reconnecting(profile, st)
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
            let client = if st.kind.reconnects() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Kind;
    use crate::names::{Names, VethAddrs};

    /// A profile that is up as far as its state says, on a machine the
    /// test describes.
    struct Fake {
        kind: Kind,
        pid_alive: bool,
        tunnel_present: bool,
        reconnect: Result<Option<Reconnect>, String>,
    }

    impl Probe for Fake {
        fn state(&self, profile: &str) -> Option<State> {
            Some(State {
                profile: profile.into(),
                kind: self.kind,
                names: Names::for_profile(profile),
                veth: VethAddrs::for_profile(profile),
                implementation: None,
                pid: Some(4242),
                started: 0,
                complete: true,
                overrides: Default::default(),
                listen_port: None,
                openvpn: None,
            })
        }
        fn alive(&self, _: u32) -> bool {
            self.pid_alive
        }
        fn open_netns(&self, _: &str) -> Result<OwnedFd> {
            Ok(std::fs::File::open("/dev/null")?.into())
        }
        fn has_link(&self, _: BorrowedFd<'_>, _: &str) -> Result<bool> {
            Ok(self.tunnel_present)
        }
        fn reconnecting(&self, _: &str, _: &State) -> Result<Option<Reconnect>, String> {
            self.reconnect.clone()
        }
    }

    /// The words `exec` (which asks the client only when the tunnel is
    /// gone), and `status` and `list` (which always ask) see.
    fn words(f: &Fake) -> (String, String) {
        let exec = judge(f, "corp", false).0;
        let status_and_list = judge(f, "corp", true).0;
        (
            exec.word().into(),
            state_word(&status_and_list, true).into(),
        )
    }

    #[test]
    fn an_openvpn_profile_without_its_tunnel_and_not_reconnecting_is_broken_everywhere() {
        let f = Fake {
            kind: Kind::OpenVpn,
            pid_alive: true,
            tunnel_present: false,
            reconnect: Ok(None),
        };
        assert_eq!(words(&f), ("broken".into(), "broken".into()));
        let Health::Broken(why) = judge(&f, "corp", false).0 else {
            unreachable!()
        };
        assert!(
            why.contains("its tunnel device nsvt-corp is gone")
                && why.contains("openvpn is not reconnecting"),
            "{why}"
        );
    }

    #[test]
    fn the_other_cases_are_judged_alike_too() {
        let reconnect = Reconnect {
            since: 1,
            last_error: Some("server unreachable".into()),
        };
        let case = |kind, pid_alive, tunnel_present, reconnect| {
            words(&Fake {
                kind,
                pid_alive,
                tunnel_present,
                reconnect,
            })
        };
        let same = |w: &str| (w.to_string(), w.to_string());
        // Reconnecting without its tunnel (no persist-tun): not broken.
        assert_eq!(
            case(Kind::OpenVpn, true, false, Ok(Some(reconnect.clone()))),
            same("reconnecting")
        );
        // The client cannot be asked (a user, the socket is root's): not a false broken.
        assert_eq!(
            case(Kind::OpenVpn, true, false, Err("denied".into())),
            same("reconnecting")
        );
        assert_eq!(case(Kind::OpenVpn, true, true, Ok(None)), same("up"));
        assert_eq!(case(Kind::OpenVpn, false, true, Ok(None)), same("broken"));
        assert_eq!(case(Kind::WireGuard, true, false, Ok(None)), same("broken"));
        // With its tunnel there, only status and list ask (and so see it).
        assert_eq!(
            case(Kind::OpenVpn, true, true, Ok(Some(reconnect))),
            ("up".into(), "reconnecting".into())
        );
    }
}
