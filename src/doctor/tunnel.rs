//! The tunnel: the profile's health as `status` judges it (a dead client, a
//! reconnecting one, a vanished device), with the end of the client's log;
//! and for WireGuard each peer's last handshake.

use crate::backend::wireguard::PeerStatus;

use super::{Area, Finding};

/// WireGuard's REJECT_AFTER_TIME: a session this old is dead, and a peer
/// that sends traffic makes a new one every REKEY_AFTER_TIME (120 s).
pub const HANDSHAKE_STALE_SECS: u64 = 180;

/// Where the profile stands, from `lifecycle::assess`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Down,
    Up,
    Reconnecting(String),
    Broken(String),
}

/// A finding for a profile that is not up and working; `log` is its
/// client's log file and its last lines, if it has one.
pub fn judge_standing(
    st: &Standing,
    profile: &str,
    program: &str,
    log: Option<(&str, &str)>,
) -> Option<Finding> {
    let restart = format!("nsvpn down {profile} && nsvpn up {profile}");
    let with_log = |f: Finding| match log {
        Some((path, l)) if l.trim().is_empty() => f.evidence(format!(
            "the end of {program}'s log ({path}): nothing it wrote says why"
        )),
        Some((path, l)) => f.evidence(format!("the end of {program}'s log ({path}):\n{l}")),
        None => f,
    };
    match st {
        Standing::Up => None,
        Standing::Down => Some(
            Finding::problem(Area::Tunnel, format!("profile {profile} is not up"))
                .why("doctor examines a profile's tunnel, routes, DNS and MTU inside its namespace, which exists only while it is up")
                .fix(format!("nsvpn up {profile}, then nsvpn doctor {profile}")),
        ),
        Standing::Reconnecting(why) => Some(with_log(
            Finding::problem(Area::Tunnel, format!("{program} is reconnecting: profile {profile} carries nothing meanwhile"))
                .evidence(why.clone())
                .why("the VPN's server is out of reach or refuses the client; the namespace stays sealed until it is back")
                .fix(format!("wait for it, or read the log above; `{restart}` starts afresh")),
        )),
        Standing::Broken(why) => Some(with_log(
            Finding::problem(Area::Tunnel, format!("profile {profile} is broken: its tunnel cannot work"))
                .evidence(why.clone())
                .why("nothing inside reaches the VPN; the namespace stays sealed, so nothing leaks either")
                .fix(restart),
        )),
    }
}

fn short_key(k: &str) -> &str {
    &k[..k.len().min(8)]
}

/// Each WireGuard peer with an endpoint whose handshake never completed,
/// or is older than a session lives, although traffic was sent.
pub fn judge_peers(peers: &[PeerStatus], now: u64, profile: &str, tunnel: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in peers {
        let Some(endpoint) = &p.endpoint else {
            continue;
        };
        let age = p.last_handshake.map(|t| now.saturating_sub(t));
        let when = match age {
            None => "never".to_string(),
            Some(a) if a < HANDSHAKE_STALE_SECS => continue,
            Some(a) => format!("{a} s ago"),
        };
        out.push(
            Finding::problem(
                Area::Tunnel,
                format!("no WireGuard handshake with {endpoint}: UDP to the endpoint is lost"),
            )
            .evidence(format!(
                "peer {}… on {tunnel}: endpoint {endpoint}, last handshake {when} (a session lasts {HANDSHAKE_STALE_SECS} s), sent {} bytes, received {}",
                short_key(&p.public_key),
                p.tx_bytes,
                p.rx_bytes
            ))
            .why(format!(
                "WireGuard talks to {endpoint} over UDP only and has no TCP fallback: a firewall, captive portal or network that lets only TCP through stops it, and nothing inside {profile} reaches the VPN"
            ))
            .fix(format!(
                "let UDP to {endpoint} through (the local firewall, the network's, the server's); on a network that allows only TCP, use the VPN's TCP mode (OpenVPN over TCP, OpenConnect) if it has one"
            )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(endpoint: Option<&str>, hs: Option<u64>) -> PeerStatus {
        PeerStatus {
            public_key: "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=".into(),
            endpoint: endpoint.map(Into::into),
            last_handshake: hs,
            rx_bytes: 0,
            tx_bytes: 1480,
            allowed_ips: vec![],
        }
    }

    #[test]
    fn handshakes_judged() {
        let now = 1_000_000;
        assert!(
            judge_peers(
                &[peer(Some("203.0.113.2:51820"), Some(now - 30))],
                now,
                "alpha",
                "nsvt-alpha"
            )
            .is_empty()
        );
        // A peer without endpoint waits for the other side: not ours to judge.
        assert!(judge_peers(&[peer(None, None)], now, "alpha", "nsvt-alpha").is_empty());
        let fs = judge_peers(
            &[
                peer(Some("203.0.113.2:51820"), None),
                peer(Some("203.0.113.6:51820"), Some(now - 600)),
            ],
            now,
            "alpha",
            "nsvt-alpha",
        );
        let mut r = super::super::Report::new("alpha");
        r.findings = fs;
        insta::assert_snapshot!(super::super::render(&r));
    }

    #[test]
    fn standings_judged() {
        let quiet = judge_standing(
            &Standing::Broken("gone".into()),
            "b",
            "wireguard-go",
            Some(("/run/nsvpn/b/wireguard-go.log", "")),
        )
        .unwrap();
        assert_eq!(
            quiet.evidence[1],
            "the end of wireguard-go's log (/run/nsvpn/b/wireguard-go.log): nothing it wrote says why"
        );
        assert_eq!(judge_standing(&Standing::Up, "corp", "openvpn", None), None);
        let mut r = super::super::Report::new("corp");
        r.findings = [
            Standing::Down,
            Standing::Reconnecting(
                "openvpn reconnecting since 12 s ago, last error: server unreachable".into(),
            ),
            Standing::Broken("its VPN client (openvpn pid 4242) has exited".into()),
        ]
        .iter()
        .filter_map(|s| {
            judge_standing(
                s,
                "corp",
                "openvpn",
                Some((
                    "/run/nsvpn/corp/openvpn.log",
                    "    2026-11-25 SIGTERM received\n    2026-11-25 process exiting",
                )),
            )
        })
        .collect();
        insta::assert_snapshot!(super::super::render(&r));
    }
}
