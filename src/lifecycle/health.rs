//! Where a profile stands: the one judgement of up, reconnecting or broken
//! behind `status`, `list` and `exec`.

use std::os::fd::OwnedFd;

use super::parts::{self, Check, Look, Machine, Part, Probe};
use crate::backend::Reconnect;
use crate::state::State;

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

/// The profile's health, for `exec`: only what can make it broken is
/// checked, and the client is asked whether it reconnects only when the
/// tunnel device is gone (openvpn logs every management connection, and
/// `exec` may run often).
pub fn health(profile: &str) -> Health {
    judge(&Machine, State::load(profile), profile, false).health
}

/// The profile's health, for `status` and `list`: every part is checked,
/// also after a broken one, and the client always asked.
pub fn assess(profile: &str) -> Assessment {
    judge(&Machine, State::load(profile), profile, true)
}

/// A profile's health, and what it was judged from.
pub struct Assessment {
    pub health: Health,
    /// The client's reconnect, if it is reconnecting.
    pub reconnect: Option<Reconnect>,
    /// Each part's check, in order (none without a finished state).
    pub parts: Vec<(&'static dyn Part, Check)>,
}

/// The one judgement: down without state, broken while `up` has not
/// finished, else the first broken part, else reconnecting if the tunnel
/// reconnects, else up. `thorough` checks everything (`status`, `list`);
/// else only what can break the profile, stopping at the first broken part.
pub fn judge(probe: &dyn Probe, st: Option<State>, profile: &str, thorough: bool) -> Assessment {
    let verdict = |health| Assessment {
        health,
        reconnect: None,
        parts: Vec::new(),
    };
    let Some(st) = st else {
        return verdict(Health::Down);
    };
    if !st.complete {
        let why = "its `up` did not finish (it is running now, or it crashed)";
        return verdict(Health::Broken(why.into()));
    }
    let mut look = Look {
        probe,
        profile,
        st: &st,
        thorough,
        ns: None,
        reconnect: None,
    };
    let parts = parts::check_all(&mut look, !thorough);
    let broken = parts.iter().find_map(|(_, c)| match c {
        Check::Broken(why) => Some(why.clone()),
        _ => None,
    });
    let reconnecting = parts.iter().find_map(|(_, c)| match c {
        Check::Reconnecting(why) => Some(why.clone()),
        _ => None,
    });
    let health = match (broken, look.ns.take(), reconnecting) {
        (Some(why), _, _) => Health::Broken(why),
        (None, None, _) => Health::Broken("its namespace could not be opened".into()),
        (None, Some(ns), Some(why)) => Health::Reconnecting(ns, why),
        (None, Some(ns), None) => Health::Up(ns),
    };
    Assessment {
        health,
        reconnect: look.reconnect.take(),
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Kind;
    use crate::names::{Names, VethAddrs};
    use anyhow::Result;
    use std::os::fd::BorrowedFd;

    /// A profile that is up as far as its state says, on a machine the
    /// test describes.
    struct Fake {
        kind: Kind,
        pid_alive: bool,
        tunnel_present: bool,
        veth_present: bool,
        reconnect: Result<Option<Reconnect>, String>,
    }

    impl Fake {
        fn state(&self, profile: &str) -> Option<State> {
            Some(State {
                profile: profile.into(),
                kind: self.kind,
                names: Names::for_profile(profile),
                veth: VethAddrs::for_profile(profile),
                pid: Some(4242),
                started: 0,
                complete: true,
                connected: None,
                overrides: Default::default(),
                backend: Default::default(),
                parts: vec![],
            })
        }
    }

    impl Probe for Fake {
        fn host_has_link(&self, _: &str) -> bool {
            self.veth_present
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
        let exec = judge(f, f.state("corp"), "corp", false).health;
        let status_and_list = judge(f, f.state("corp"), "corp", true).health;
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
            veth_present: true,
            reconnect: Ok(None),
        };
        assert_eq!(words(&f), ("broken".into(), "broken".into()));
        let Health::Broken(why) = judge(&f, f.state("corp"), "corp", false).health else {
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
                veth_present: true,
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
        // An IPsec profile between two charons (its supervisor replaced the
        // one without an SA): reconnecting, not broken; a dead charon with
        // no supervisor reconnecting is broken.
        assert_eq!(
            case(Kind::IpSec, false, false, Ok(Some(reconnect.clone()))),
            same("reconnecting")
        );
        assert_eq!(case(Kind::IpSec, false, true, Ok(None)), same("broken"));
        assert_eq!(
            case(Kind::IpSec, false, true, Err("cannot ask".into())),
            same("broken")
        );
        // With its tunnel there, only status and list ask (and so see it).
        assert_eq!(
            case(Kind::OpenVpn, true, true, Ok(Some(reconnect))),
            ("up".into(), "reconnecting".into())
        );
    }

    /// A part that is degraded (the host's veth end gone) leaves the
    /// profile up; `status` and `list` see it among the parts, `exec` does
    /// not even look.
    #[test]
    fn a_degraded_part_is_shown_but_does_not_break_the_profile() {
        let f = Fake {
            kind: Kind::WireGuard,
            pid_alive: true,
            tunnel_present: true,
            veth_present: false,
            reconnect: Ok(None),
        };
        assert_eq!(words(&f), ("up".into(), "up".into()));
        let a = judge(&f, f.state("corp"), "corp", true);
        let shown: Vec<(&str, &str)> = a.parts.iter().map(|(p, c)| (p.name(), c.word())).collect();
        assert_eq!(
            shown,
            [("namespace", "ok"), ("veth", "degraded"), ("tunnel", "ok")]
        );
        let quick = judge(&f, f.state("corp"), "corp", false);
        assert!(quick.parts.iter().all(|(_, c)| *c == Check::Fine));
    }
}
