//! Routes that collide: on the host, a tunnel device's routes over a
//! container bridge, Tailscale, the LAN or another tunnel; inside a
//! profile, the VPN's routes over the veth, `[split] direct` prefixes or
//! the user-mode stack; and loopback routed anywhere but `lo`.

use std::collections::BTreeMap;

use crate::ipnet::IpNet;
use crate::netlink::{Address, Link, Route, RouteTo};

use super::{Area, Finding};

/// What the host's links, addresses and routes are.
pub struct Net<'a> {
    pub links: &'a [Link],
    pub addrs: &'a [Address],
    pub routes: &'a [Route],
}

/// Well-known ranges a VPN's route may take from something else.
const WELL_KNOWN: &[(&str, &str)] = &[
    ("172.17.0.0/16", "Docker's default bridge range"),
    ("10.88.0.0/16", "Podman's default network range"),
    ("100.64.0.0/10", "Tailscale's address range"),
];

/// A tunnel device: a tun (OpenVPN, OpenConnect, wireguard-go, Tailscale)
/// or kernel WireGuard link.
pub fn is_tunnel(l: &Link) -> bool {
    matches!(l.kind.as_deref(), Some("tun" | "wireguard"))
}

/// nsvpn's own links (veth ends, tunnels, the stack's tap).
fn is_nsvpn(l: &Link) -> bool {
    l.name.starts_with("nsv")
}

pub fn overlap(a: IpNet, b: IpNet) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.network()) || b.contains(a.network()))
}

/// What a link is, for messages and fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Bridge,
    Tailscale,
    Tunnel,
    Lan,
}

fn role(l: &Link) -> Option<Role> {
    if l.name == "lo" || is_nsvpn(l) {
        None
    } else if l.name == "tailscale0" {
        Some(Role::Tailscale)
    } else if is_tunnel(l) {
        Some(Role::Tunnel)
    } else if l.kind.as_deref() == Some("bridge") {
        Some(Role::Bridge)
    } else {
        Some(Role::Lan)
    }
}

fn fix_for(role: Role, other: &str, tunnel: &str, dest: IpNet) -> String {
    match role {
        Role::Bridge if other == "docker0" => format!(
            "move Docker's bridge off {dest}: \"bip\": \"172.31.0.1/24\" (a free range) in /etc/docker/daemon.json, then `systemctl restart docker`"
        ),
        Role::Bridge if other.contains("podman") => format!(
            "move Podman's network off {dest}: a free subnet in /etc/containers/networks/podman.json (or `podman network create --subnet`)"
        ),
        Role::Bridge => format!("give the bridge {other} a subnet outside {dest}"),
        Role::Tailscale => format!(
            "keep {tunnel}'s VPN out of Tailscale's 100.64.0.0/10: run it as an nsvpn profile (its routes then exist only in its namespace), or narrow its routes"
        ),
        Role::Tunnel | Role::Lan => format!(
            "run the VPN of {tunnel} as an nsvpn profile (its routes then exist only in its namespace, beside {other}'s), or narrow its routes"
        ),
    }
}

fn why_for(role: Role, other: &str, tunnel: &str) -> String {
    match role {
        Role::Bridge => format!(
            "the more specific route wins: either the containers on {other} or the VPN's hosts in that range are out of reach"
        ),
        Role::Tailscale => "Tailscale's peers and the VPN's hosts share addresses: traffic meant for one goes to the other".into(),
        Role::Tunnel => format!("two VPNs claim the same addresses on one routing table: only one of them ({tunnel} or {other}) gets the traffic"),
        Role::Lan => format!(
            "the LAN on {other} and the VPN share addresses: the printer, NAS or gateway there, or the VPN's hosts, are out of reach"
        ),
    }
}

/// The host's tunnel routes that overlap a bridge, Tailscale, the LAN or
/// another tunnel. Routes shorter than /8 (a full tunnel's default or its
/// two halves) cover everything on purpose and are left out.
pub fn host_overlaps(net: &Net<'_>) -> Vec<Finding> {
    let names: BTreeMap<u32, &Link> = net.links.iter().map(|l| (l.index, l)).collect();
    let link_of = |r: &Route| r.link.and_then(|i| names.get(&i).copied());
    // What each other link occupies: its connected routes and addresses.
    let mut claims: Vec<(IpNet, &Link, Role, String)> = Vec::new();
    for r in net.routes {
        if let Some(l) = link_of(r)
            && let Some(role) = role(l)
            && (role != Role::Tunnel && r.gateway.is_none() || role == Role::Tunnel)
            && !r.unreachable
            && r.dest.prefix() >= 8
        {
            claims.push((r.dest, l, role, format!("{} dev {}", r.dest, l.name)));
        }
    }
    for a in net.addrs {
        if let Some(l) = names.get(&a.link)
            && let Some(role) = role(l)
            && matches!(role, Role::Bridge | Role::Tailscale)
        {
            let n = a.net.trunc();
            if !claims
                .iter()
                .any(|(c, x, _, _)| *c == n && x.index == l.index)
            {
                claims.push((
                    n,
                    l,
                    role,
                    format!("{} on {} (address {})", n, l.name, a.net),
                ));
            }
        }
    }
    if let Some(ts) = net.links.iter().find(|l| l.name == "tailscale0") {
        let range: IpNet = "100.64.0.0/10".parse().expect("valid");
        claims.push((
            range,
            ts,
            Role::Tailscale,
            format!("{range}: Tailscale's range ({} exists)", ts.name),
        ));
    }
    let mut out = Vec::new();
    for r in net.routes {
        let Some(t) = link_of(r) else { continue };
        if !is_tunnel(t) || is_nsvpn(t) || r.dest.prefix() < 8 || r.unreachable {
            continue;
        }
        for (dest, other, role, shown) in &claims {
            if other.index == t.index || !overlap(r.dest, *dest) {
                continue;
            }
            // Tailscale is the other side of its collisions, never the
            // tunnel that collides; and one finding per pair of links.
            if t.name == "tailscale0"
                || out.iter().any(|f: &Finding| {
                    f.evidence[0] == format!("{} dev {}", r.dest, t.name)
                        && f.evidence[1].contains(&format!(" {}", other.name))
                })
            {
                continue;
            }
            let what = match role {
                Role::Bridge => format!(
                    "the tunnel {}'s route {} overlaps the container bridge {}",
                    t.name, r.dest, other.name
                ),
                Role::Tailscale => format!(
                    "the tunnel {}'s route {} overlaps Tailscale",
                    t.name, r.dest
                ),
                Role::Tunnel => format!(
                    "the tunnels {} and {} both route {}",
                    t.name,
                    other.name,
                    if r.dest.prefix() >= dest.prefix() {
                        r.dest
                    } else {
                        *dest
                    }
                ),
                Role::Lan => format!(
                    "the tunnel {}'s route {} overlaps the LAN on {}",
                    t.name, r.dest, other.name
                ),
            };
            // Each pair of tunnels once.
            if *role == Role::Tunnel && other.index < t.index {
                continue;
            }
            out.push(
                Finding::problem(Area::Routes, what)
                    .evidence(format!("{} dev {}", r.dest, t.name))
                    .evidence(shown.clone())
                    .why(why_for(*role, &other.name, &t.name))
                    .fix(fix_for(*role, &other.name, &t.name, r.dest)),
            );
        }
        for (range, what) in WELL_KNOWN {
            let range: IpNet = range.parse().expect("valid");
            if overlap(r.dest, range)
                && !out
                    .iter()
                    .any(|f| f.evidence[0] == format!("{} dev {}", r.dest, t.name))
                && t.name != "tailscale0"
            {
                out.push(
                    Finding::notice(Area::Routes, format!("the tunnel {}'s route {} is in {what}", t.name, r.dest))
                        .evidence(format!("{} dev {}", r.dest, t.name))
                        .why(format!("nothing uses {range} here now, but containers or Tailscale started later would collide with this VPN"))
                        .fix(format!("run the VPN of {} as an nsvpn profile: its routes then exist only in its namespace", t.name)),
                );
            }
        }
    }
    out
}

/// What a profile's namespace holds, for the inside checks.
pub struct Inside<'a> {
    pub profile: &'a str,
    pub profile_file: String,
    pub tunnel: &'a str,
    pub veth: IpNet,
    pub direct: &'a [IpNet],
    pub net: Net<'a>,
}

/// The VPN's routes inside a profile over the veth's subnet, `[split]
/// direct` prefixes, or the user-mode stack's addresses.
pub fn inside_overlaps(i: &Inside<'_>) -> Vec<Finding> {
    let Some(tun) = i.net.links.iter().find(|l| l.name == i.tunnel) else {
        return Vec::new();
    };
    let vpn: Vec<IpNet> = i
        .net
        .routes
        .iter()
        .filter(|r| r.link == Some(tun.index) && !r.unreachable && r.dest.prefix() >= 8)
        .map(|r| r.dest)
        .collect();
    let stack: Vec<(IpNet, &str)> = i
        .net
        .addrs
        .iter()
        .filter_map(|a| {
            let l = i.net.links.iter().find(|l| l.index == a.link)?;
            (l.name == crate::split::STACK_DEVICE).then_some((a.net.trunc(), l.name.as_str()))
        })
        .collect();
    let mut out = Vec::new();
    let p = i.profile;
    for r in &vpn {
        if overlap(*r, i.veth) {
            out.push(
                Finding::problem(Area::Routes, format!("the VPN's route {r} covers the namespace's link to the host ({})", i.veth))
                    .evidence(format!("{r} dev {} (inside nsvpn-{p})", i.tunnel))
                    .evidence(format!("{} is the veth pair's subnet", i.veth))
                    .why("the VPN takes addresses nsvpn uses between the namespace and the host: services on the host, or the VPN's hosts there, are out of reach")
                    .fix(format!("[veth] subnet = \"169.254.200.0/30\" (a free /30) in {}, then `nsvpn down {p} && nsvpn up {p}`", i.profile_file)),
            );
        }
        for d in i.direct {
            if overlap(*r, *d) {
                out.push(
                    Finding::notice(Area::Routes, format!("[split] direct {d} takes the VPN's route {r} from it"))
                        .evidence(format!("{r} dev {} (inside nsvpn-{p})", i.tunnel))
                        .evidence(format!("direct = [\"{d}\"] in {}", i.profile_file))
                        .why(format!("traffic for {d} goes through the host's network, never the VPN: the VPN's hosts in it are out of reach"))
                        .fix(format!("if that is not what you want, take {d} out of [split] direct in {}", i.profile_file)),
                );
            }
        }
        for (s, dev) in &stack {
            if overlap(*r, *s) {
                out.push(
                    Finding::problem(Area::Routes, format!("the VPN's route {r} covers the user-mode stack's network {s}"))
                        .evidence(format!("{r} dev {} (inside nsvpn-{p})", i.tunnel))
                        .evidence(format!("{s} dev {dev}: slirp4netns's network, its gateway and DNS"))
                        .why("the way to the host's network and its DNS answers is shadowed: split traffic and names fail")
                        .fix(format!("[routes] include = [...] in {} without {s}", i.profile_file)),
                );
            }
        }
    }
    out
}

/// Loopback must be delivered locally, on `lo`. `where_` names the
/// namespace ("the host", "inside nsvpn-alpha"), `ip` the command prefix
/// for it ("ip", "ip -n nsvpn-alpha").
pub fn loopback(got: Option<&RouteTo>, links: &[Link], where_: &str, ip: &str) -> Option<Finding> {
    let name = |i: Option<u32>| {
        i.and_then(|i| links.iter().find(|l| l.index == i))
            .map_or("no link".to_string(), |l| l.name.clone())
    };
    let shown = match got {
        None => "no route at all".to_string(),
        Some(r) => format!(
            "{} {} dev {} table {}",
            if r.local {
                "local"
            } else if r.refused {
                "unreachable"
            } else {
                "unicast"
            },
            r.dest,
            name(r.link),
            match r.table {
                255 => "local".to_string(),
                254 => "main".to_string(),
                t => t.to_string(),
            }
        ),
    };
    if let Some(r) = got
        && r.local
        && name(r.link) == "lo"
    {
        return None;
    }
    let to = got.map_or("nowhere".to_string(), |r| name(r.link));
    Some(
        Finding::problem(Area::Routes, format!("loopback (127.0.0.1) is routed to {to} {where_}, not delivered on lo"))
            .evidence(format!("`{ip} route get 127.0.0.1`: {shown}"))
            .why("programs that talk to themselves or to local services (databases, agents, DNS stubs on 127.0.0.53) send that traffic away, or fail")
            .fix(format!(
                "find the rule that sends it there (`{ip} rule show`; the `local` table's rule must come first) and delete it: `{ip} rule del <that rule>`"
            )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, kind: Option<&str>) -> Link {
        Link {
            index,
            name: name.into(),
            kind: kind.map(Into::into),
            up: true,
            mtu: Some(1500),
            carrier: Some(true),
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    fn route(dest: &str, link: u32) -> Route {
        Route::via_link(dest.parse().unwrap(), link)
    }

    fn addr(link: u32, net: &str) -> Address {
        Address {
            link,
            net: net.parse().unwrap(),
        }
    }

    fn text(fs: &[Finding]) -> String {
        let mut r = super::super::Report::new("test");
        r.findings = fs.to_vec();
        super::super::render(&r)
    }

    #[test]
    fn host_collisions_with_a_bridge_tailscale_the_lan_and_another_tunnel() {
        let links = [
            link(1, "lo", None),
            link(2, "eth0", Some("veth")),
            link(3, "docker0", Some("bridge")),
            link(4, "tun0", Some("tun")),
            link(5, "tailscale0", Some("tun")),
            link(6, "wg-corp", Some("wireguard")),
            link(7, "nsvh-alpha", Some("veth")),
        ];
        let addrs = [
            addr(2, "192.168.1.20/24"),
            addr(3, "172.17.0.1/16"),
            addr(5, "100.101.102.103/32"),
        ];
        let routes = [
            route("192.168.1.0/24", 2),
            route("172.17.0.0/16", 3),
            route("172.17.0.0/16", 4),
            route("192.168.1.128/25", 4),
            route("100.100.0.0/16", 6),
            route("100.64.0.0/10", 5),
            route("10.20.0.0/16", 4),
            route("10.20.5.0/24", 6),
            route("0.0.0.0/0", 6),
            route("169.254.1.0/30", 7),
        ];
        let fs = host_overlaps(&Net {
            links: &links,
            addrs: &addrs,
            routes: &routes,
        });
        insta::assert_snapshot!(text(&fs));
    }

    #[test]
    fn a_quiet_host_has_nothing_to_say() {
        let links = [
            link(1, "lo", None),
            link(2, "eth0", Some("veth")),
            link(3, "docker0", Some("bridge")),
            link(4, "tun0", Some("tun")),
        ];
        let addrs = [addr(2, "192.168.1.20/24"), addr(3, "172.17.0.1/16")];
        let routes = [
            route("192.168.1.0/24", 2),
            route("172.17.0.0/16", 3),
            route("10.20.0.0/16", 4),
            route("0.0.0.0/1", 4),
        ];
        assert_eq!(
            host_overlaps(&Net {
                links: &links,
                addrs: &addrs,
                routes: &routes
            }),
            vec![]
        );
        // The well-known ranges, with nothing there yet: a notice.
        let routes = [route("10.88.0.0/16", 4)];
        let fs = host_overlaps(&Net {
            links: &links,
            addrs: &addrs,
            routes: &routes,
        });
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].severity, super::super::Severity::Notice);
    }

    #[test]
    fn inside_collisions() {
        let links = [
            link(1, "lo", None),
            link(2, "nsvn-alpha", Some("veth")),
            link(3, "nsvt-alpha", Some("tun")),
            link(4, "nsvs0", Some("tun")),
        ];
        let addrs = [addr(2, "169.254.9.2/30"), addr(4, "10.255.0.100/24")];
        let routes = [
            route("169.254.9.0/30", 2),
            route("169.254.0.0/16", 3),
            route("10.255.0.0/16", 3),
            route("192.168.1.0/24", 3),
            route("10.20.0.0/16", 3),
        ];
        let direct = ["192.168.1.0/24".parse().unwrap()];
        let fs = inside_overlaps(&Inside {
            profile: "alpha",
            profile_file: "/etc/nsvpn/profiles/alpha.toml".into(),
            tunnel: "nsvt-alpha",
            veth: "169.254.9.0/30".parse().unwrap(),
            direct: &direct,
            net: Net {
                links: &links,
                addrs: &addrs,
                routes: &routes,
            },
        });
        insta::assert_snapshot!(text(&fs));
        let quiet = [route("10.20.0.0/16", 3)];
        assert!(
            inside_overlaps(&Inside {
                profile: "alpha",
                profile_file: String::new(),
                tunnel: "nsvt-alpha",
                veth: "169.254.9.0/30".parse().unwrap(),
                direct: &[],
                net: Net {
                    links: &links,
                    addrs: &addrs,
                    routes: &quiet
                },
            })
            .is_empty()
        );
    }

    #[test]
    fn loopback_on_lo_is_fine_and_anything_else_is_not() {
        let links = [link(1, "lo", None), link(9, "tun0", Some("tun"))];
        let lo = RouteTo {
            dest: "127.0.0.1".parse().unwrap(),
            link: Some(1),
            table: 255,
            local: true,
            refused: false,
        };
        assert_eq!(loopback(Some(&lo), &links, "on the host", "ip"), None);
        let tun = RouteTo {
            link: Some(9),
            table: 77,
            local: false,
            ..lo.clone()
        };
        let f = loopback(
            Some(&tun),
            &links,
            "inside nsvpn-alpha",
            "ip -n nsvpn-alpha",
        )
        .unwrap();
        let none = loopback(None, &links, "on the host", "ip").unwrap();
        insta::assert_snapshot!(text(&[f, none]));
    }
}
