//! Leftovers: nsvpn's own traces with no live profile (namespaces, links,
//! /etc/netns directories, state whose client is gone, wireguard-go
//! sockets), each with the `nsvpn down` that removes it; and other VPN
//! clients' stale tunnel devices.

use std::collections::BTreeMap;

use crate::names::Names;
use crate::netlink::{Address, Link};

use super::routes::is_tunnel;
use super::{Area, Finding};

/// A profile's state as found in /run/nsvpn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSeen {
    pub profile: String,
    pub complete: bool,
    /// The client's pid and whether it still runs.
    pub client: Option<(u32, bool)>,
    pub program: String,
}

/// What the machine holds.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Namespaces in /run/netns.
    pub netns: Vec<String>,
    pub links: Vec<Link>,
    pub addrs: Vec<Address>,
    /// Directories in /etc/netns.
    pub etc_netns: Vec<String>,
    pub states: Vec<StateSeen>,
    /// wireguard-go's sockets, by interface name.
    pub sockets: Vec<String>,
    /// The profiles in the profile directory (to name a hashed link's).
    pub known: Vec<String>,
}

/// The profile a trace name belongs to: `nsvpn-<p>` or `nsv?-<tag>`.
fn owner_of(name: &str, known: &[String]) -> Option<String> {
    if let Some(p) = name.strip_prefix("nsvpn-") {
        return Some(p.to_string());
    }
    let tag = ["nsvh-", "nsvn-", "nsvt-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))?;
    known
        .iter()
        .find(|k| {
            let n = Names::for_profile(k);
            [n.host_veth, n.ns_veth, n.tunnel].iter().any(|x| x == name)
        })
        .cloned()
        .or_else(|| (!tag.contains('.')).then(|| tag.to_string()))
}

pub fn judge(s: &Seen) -> Vec<Finding> {
    let live: Vec<&StateSeen> = s.states.iter().collect();
    let is_live = |p: &str| live.iter().any(|st| st.profile == p);
    // Traces of profiles without state, grouped by profile.
    let mut orphans: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unowned: Vec<String> = Vec::new();
    let mut note = |owner: Option<String>, what: String, unowned: &mut Vec<String>| match owner {
        Some(p) if !is_live(&p) => orphans.entry(p).or_default().push(what),
        Some(_) => {}
        None => unowned.push(what),
    };
    for n in s.netns.iter().filter(|n| n.starts_with("nsvpn-")) {
        note(
            owner_of(n, &s.known),
            format!("namespace {n} (/run/netns/{n})"),
            &mut unowned,
        );
    }
    for l in s.links.iter().filter(|l| {
        ["nsvh-", "nsvn-", "nsvt-"]
            .iter()
            .any(|p| l.name.starts_with(p))
    }) {
        // A live profile's own links are not leftovers.
        if live.iter().any(|st| {
            let n = Names::for_profile(&st.profile);
            [n.host_veth, n.tunnel].contains(&l.name)
        }) {
            continue;
        }
        note(
            owner_of(&l.name, &s.known),
            format!("link {} on the host", l.name),
            &mut unowned,
        );
    }
    for d in s.etc_netns.iter().filter(|d| d.starts_with("nsvpn-")) {
        note(
            owner_of(d, &s.known),
            format!("directory /etc/netns/{d}"),
            &mut unowned,
        );
    }
    for sock in &s.sockets {
        if !sock.starts_with("nsvt-") {
            continue;
        }
        if live
            .iter()
            .any(|st| Names::for_profile(&st.profile).tunnel == *sock)
        {
            continue;
        }
        note(
            owner_of(sock, &s.known),
            format!("wireguard-go socket /var/run/wireguard/{sock}.sock"),
            &mut unowned,
        );
    }
    let mut out = Vec::new();
    for (p, what) in orphans {
        let mut f = Finding::problem(
            Area::Leftovers,
            format!("leftovers of profile {p}, which is not up"),
        );
        for w in what {
            f = f.evidence(w);
        }
        out.push(
            f.why(format!("a crashed or killed nsvpn left them: they hold names and addresses profile {p} needs, and an `up` of it may fail on them"))
                .fix(format!("nsvpn down {p}")),
        );
    }
    for w in unowned {
        let name = w.split_whitespace().nth(1).unwrap_or_default().to_string();
        out.push(
            Finding::problem(
                Area::Leftovers,
                format!("a trace of nsvpn that no profile owns: {w}"),
            )
            .evidence(w.clone())
            .why("left by a profile whose file is gone; nothing uses it")
            .fix(if w.starts_with("link") {
                format!("ip link del {name}")
            } else {
                format!("nsvpn down <the profile it was> (or remove {name} by hand)")
            }),
        );
    }
    for st in &s.states {
        let p = &st.profile;
        if !st.complete {
            out.push(
                Finding::problem(Area::Leftovers, format!("profile {p}'s `up` did not finish (it is running now, or it crashed)"))
                    .evidence(format!("/run/nsvpn/{p}/state.json says the up is incomplete"))
                    .why("an `up` that crashed or was killed leaves a half-made profile that neither works nor lets a new `up` start")
                    .fix(format!("unless an `nsvpn up {p}` is running now: nsvpn down {p}")),
            );
        } else if let Some((pid, false)) = st.client {
            out.push(
                Finding::problem(Area::Leftovers, format!("profile {p}'s VPN client is gone"))
                    .evidence(format!("its state names {} pid {pid}, which is not running", st.program))
                    .why("the tunnel died with it: nothing inside reaches the VPN (the namespace stays sealed)")
                    .fix(format!("nsvpn down {p} && nsvpn up {p}")),
            );
        }
    }
    // Other VPN clients' tunnel devices that nothing drives.
    for l in s
        .links
        .iter()
        .filter(|l| is_tunnel(l) && !l.name.starts_with("nsv"))
    {
        let has_addr = s.addrs.iter().any(|a| a.link == l.index);
        let why = if l.kind.as_deref() == Some("tun") && l.carrier == Some(false) {
            "no process holds it (no carrier)"
        } else if !l.up {
            "it is down"
        } else if !has_addr {
            "it has no address"
        } else {
            continue;
        };
        out.push(
            Finding::problem(Area::Leftovers, format!("stale tunnel device {}: {why}", l.name))
                .evidence(format!(
                    "{} ({}), {}, {}",
                    l.name,
                    l.kind.as_deref().unwrap_or("?"),
                    if l.up { "up" } else { "down" },
                    if has_addr { "addressed" } else { "no address" }
                ))
                .why("a VPN client that died or was killed left it: its routes may still claim addresses, and its name may stop the client from starting again")
                .fix(format!("ip link del {}", l.name)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, kind: Option<&str>, up: bool, carrier: bool) -> Link {
        Link {
            index,
            name: name.into(),
            kind: kind.map(Into::into),
            up,
            mtu: Some(1500),
            carrier: Some(carrier),
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    #[test]
    fn a_clean_machine_with_a_live_profile_has_none() {
        let s = Seen {
            netns: vec!["nsvpn-alpha".into(), "lab-gw-alpha".into()],
            links: vec![
                link(2, "nsvh-alpha", Some("veth"), true, true),
                link(3, "tun0", Some("tun"), true, true),
            ],
            addrs: vec![Address {
                link: 3,
                net: "10.8.0.2/24".parse().unwrap(),
            }],
            etc_netns: vec!["nsvpn-alpha".into()],
            states: vec![StateSeen {
                profile: "alpha".into(),
                complete: true,
                client: Some((42, true)),
                program: "wireguard-go".into(),
            }],
            sockets: vec!["nsvt-alpha".into()],
            known: vec!["alpha".into()],
        };
        assert_eq!(judge(&s), vec![]);
    }

    #[test]
    fn every_kind_of_leftover() {
        let long = "averyveryverylongname";
        let hashed = Names::for_profile(long).host_veth;
        let s = Seen {
            netns: vec!["nsvpn-ghost".into()],
            links: vec![
                link(2, "nsvh-ghost", Some("veth"), true, true),
                link(3, &hashed, Some("veth"), true, true),
                link(4, "nsvh-gone.12345", Some("veth"), true, true),
                link(5, "tun7", Some("tun"), false, false),
                link(6, "wg-old", Some("wireguard"), true, true),
            ],
            addrs: vec![],
            etc_netns: vec!["nsvpn-ghost".into()],
            states: vec![
                StateSeen {
                    profile: "corp".into(),
                    complete: true,
                    client: Some((4242, false)),
                    program: "openvpn".into(),
                },
                StateSeen {
                    profile: "half".into(),
                    complete: false,
                    client: None,
                    program: "wireguard-go".into(),
                },
            ],
            sockets: vec!["nsvt-ghost".into()],
            known: vec![long.into()],
        };
        let mut r = super::super::Report::new("host");
        r.findings = judge(&s);
        insta::assert_snapshot!(super::super::render(&r));
    }
}
