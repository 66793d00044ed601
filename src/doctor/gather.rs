//! Reads the machine (netlink, /run, /etc, the profile's namespace) and
//! probes through the tunnel, then hands what it saw to each area's
//! judgement. Reads and probes only: nothing is changed.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use super::leftovers::{Seen, StateSeen};
use super::{Area, Report, dns, leftovers, mtu, routes, tunnel};
use crate::backend::{self, Kind};
use crate::ipnet::IpNet;
use crate::lifecycle::{self, Health};
use crate::netlink::{Link, Netlink, RouteTo};
use crate::profile::{self, Profile, Vpn};
use crate::state::State;
use crate::util::{self, now_unix};
use crate::{dnsfiles, netns, paths, split};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long a DNS server has to answer.
const DNS_WAIT: Duration = Duration::from_millis(1000);
/// How long a stale WireGuard peer has to complete a handshake once doctor
/// sent it traffic.
const HANDSHAKE_WAIT: Duration = Duration::from_millis(1500);

fn names_in(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The last lines of a client's log, without wireguard-go's boxed banner
/// about kernel support (which says nothing about this tunnel).
fn log_end(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains(['│', '┌', '└']))
        .collect();
    lines[lines.len().saturating_sub(8)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `nsvpn doctor`: the host's routes, loopback, DNS and leftovers.
pub fn host(dir: &Path) -> Result<Report> {
    let mut r = Report::new("host");
    r.checked = vec![Area::Routes, Area::Dns, Area::Leftovers];
    let (links, addrs, routes, lo) = util::block_on(async {
        let nl = Netlink::here()?;
        anyhow::Ok((
            nl.links().await?,
            nl.addresses().await?,
            nl.routes().await?,
            nl.route_to(LOOPBACK).await?,
        ))
    })??;
    r.findings.extend(routes::host_overlaps(&routes::Net {
        links: &links,
        addrs: &addrs,
        routes: &routes,
    }));
    r.findings
        .extend(routes::loopback(lo.as_ref(), &links, "on the host", "ip"));
    r.findings
        .extend(dns::host_finding(&dns::ResolvConf::read(Path::new(
            "/etc/resolv.conf",
        ))));
    let seen = Seen {
        netns: names_in(paths::NETNS_DIR),
        links,
        addrs,
        etc_netns: names_in(paths::NETNS_ETC),
        states: State::all()
            .into_iter()
            .map(|st| StateSeen {
                program: backend::program(&st).into(),
                client: st.pid.map(|p| (p, util::alive(p))),
                complete: st.complete,
                profile: st.profile,
            })
            .collect(),
        sockets: names_in(paths::WIREGUARD_SOCKETS)
            .into_iter()
            .filter_map(|s| s.strip_suffix(".sock").map(str::to_string))
            .collect(),
        known: profile::list_names(dir).unwrap_or_default(),
    };
    r.findings.extend(leftovers::judge(&seen));
    Ok(r)
}

/// What the namespace holds, read once.
struct InsideNet {
    links: Vec<Link>,
    addrs: Vec<crate::netlink::Address>,
    routes: Vec<crate::netlink::Route>,
    lo: Option<RouteTo>,
    to_servers: Vec<(IpAddr, Option<RouteTo>)>,
}

fn read_inside(ns: BorrowedFd<'_>, servers: &[IpAddr]) -> Result<InsideNet> {
    util::block_on(async {
        let nl = Netlink::in_netns(ns)?;
        let mut to_servers = Vec::new();
        for s in servers {
            to_servers.push((*s, nl.route_to(*s).await?));
        }
        anyhow::Ok(InsideNet {
            links: nl.links().await?,
            addrs: nl.addresses().await?,
            routes: nl.routes().await?,
            lo: nl.route_to(LOOPBACK).await?,
            to_servers,
        })
    })?
}

/// The VPN's own DNS servers: a split resolver's upstreams, else the
/// profile's resolv.conf.
fn vpn_servers(profile: &str, resolv: &[IpAddr]) -> Vec<IpAddr> {
    let from_resolver: Vec<IpAddr> = std::fs::read_to_string(paths::resolver_servers(profile))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("server=/")?.rsplit('/').next()?.parse().ok())
        .filter(|a: &IpAddr| *a != IpAddr::V4(split::STACK_DNS))
        .collect();
    if from_resolver.is_empty() {
        resolv.to_vec()
    } else {
        let mut v = Vec::new();
        for a in from_resolver {
            if !v.contains(&a) {
                v.push(a);
            }
        }
        v
    }
}

/// The address of `name` as the profile sees it: an address as is, else
/// its hosts file, else what its DNS servers answered.
fn resolve_target(netns: &str, name: &str, asked: &[dns::Asked]) -> Option<Ipv4Addr> {
    if let Ok(a) = name.parse::<Ipv4Addr>() {
        return Some(a);
    }
    let hosts = std::fs::read_to_string(paths::netns_etc(netns).join("hosts")).unwrap_or_default();
    for l in hosts.lines() {
        let mut w = l.split('#').next().unwrap_or_default().split_whitespace();
        if let Some(a) = w.next().and_then(|a| a.parse::<Ipv4Addr>().ok())
            && w.any(|n| n.eq_ignore_ascii_case(name))
        {
            return Some(a);
        }
    }
    asked
        .iter()
        .filter(|a| a.name == name)
        .find_map(|a| a.answer.as_ref()?.first().copied())
}

/// `nsvpn doctor <profile> [--target HOST[:PORT]]`.
pub fn profile(dir: &Path, name: &str, target: Option<&str>) -> Result<Report> {
    let p = Profile::load(dir, name)?;
    let profile_file = p.path.display().to_string();
    let mut r = Report::new(name);
    r.checked = vec![Area::Tunnel];
    let st = State::load(name);
    let program = st.as_ref().map_or("the VPN client", backend::program);
    let assessed = lifecycle::assess(name);
    let standing = match &assessed.health {
        Health::Down => tunnel::Standing::Down,
        Health::Up(_) => tunnel::Standing::Up,
        Health::Reconnecting(_, why) => tunnel::Standing::Reconnecting(why.clone()),
        Health::Broken(why) => tunnel::Standing::Broken(why.clone()),
    };
    let log = st
        .as_ref()
        .filter(|s| s.pid.is_some() || s.kind != Kind::WireGuard)
        .map(|_| {
            let path = paths::log_file(name, program);
            (path.display().to_string(), log_end(&path))
        });
    let log = log.as_ref().map(|(p, l)| (p.as_str(), l.as_str()));
    if let Some(f) = tunnel::judge_standing(&standing, name, program, log) {
        r.findings.push(f);
        return Ok(r);
    }
    let (Health::Up(ns), Some(st)) = (assessed.health, st) else {
        return Err(anyhow!("profile {name} is up but its state cannot be read"));
    };
    let ns = ns.as_fd();

    // WireGuard: a peer whose handshake is stale is sent traffic and given
    // a moment; still stale, UDP is lost, and nothing else inside can work.
    if st.kind == Kind::WireGuard
        && let Some(imp) = st.backend.implementation
    {
        let peers = || util::block_on(imp.peers(&st.names.tunnel, ns)).and_then(|p| p);
        let mut found = tunnel::judge_peers(&peers()?, now_unix(), name, &st.names.tunnel);
        if !found.is_empty() {
            let poke = dnsfiles::read_resolv_conf(&st.names.netns)
                .and_then(|(s, _)| s.first().and_then(|a| a.parse::<IpAddr>().ok()));
            let t0 = Instant::now();
            let _ = netns::run_in(ns, || {
                if let Some(a) = poke {
                    let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
                    let _ = s.send_to(&dns::query(1, "."), (a, 53));
                }
                Ok(())
            });
            while !found.is_empty() && t0.elapsed() < HANDSHAKE_WAIT {
                std::thread::sleep(Duration::from_millis(50));
                found = tunnel::judge_peers(&peers()?, now_unix(), name, &st.names.tunnel);
            }
        }
        if !found.is_empty() {
            r.findings.extend(found);
            return Ok(r);
        }
    }

    // Routes inside, and loopback.
    let resolv: Vec<IpAddr> = dnsfiles::read_resolv_conf(&st.names.netns)
        .map(|(s, _)| s.iter().filter_map(|a| a.parse().ok()).collect())
        .unwrap_or_default();
    let search = dnsfiles::read_resolv_conf(&st.names.netns)
        .map(|(_, s)| s)
        .unwrap_or_default();
    // A split profile's resolv.conf names its resolver on loopback: the
    // VPN's own servers behind it are asked too, through the tunnel.
    let mut servers = resolv.clone();
    for a in vpn_servers(name, &resolv) {
        if !servers.contains(&a) {
            servers.push(a);
        }
    }
    let net = read_inside(ns, &servers)?;
    r.checked.push(Area::Routes);
    let direct = p
        .split
        .as_ref()
        .map(|s| s.direct.clone())
        .unwrap_or_default();
    r.findings.extend(routes::inside_overlaps(&routes::Inside {
        profile: name,
        profile_file: profile_file.clone(),
        tunnel: &st.names.tunnel,
        veth: IpNet::from(st.veth.subnet),
        direct: &direct,
        net: routes::Net {
            links: &net.links,
            addrs: &net.addrs,
            routes: &net.routes,
        },
    }));
    let inside = format!("inside nsvpn-{name}");
    let ip = format!("ip -n nsvpn-{name}");
    r.findings
        .extend(routes::loopback(net.lo.as_ref(), &net.links, &inside, &ip));

    // DNS: each server of the profile's resolv.conf, what it is, and
    // whether it answers the name (the target, else a search domain).
    r.checked.push(Area::Dns);
    let tun = net.links.iter().find(|l| l.name == st.names.tunnel);
    let link_name = |i: Option<u32>| {
        i.and_then(|i| net.links.iter().find(|l| l.index == i))
            .map_or("nowhere".to_string(), |l| format!("dev {}", l.name))
    };
    let host_of = |t: &str| -> String {
        match t.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() && !h.contains(':') => h.into(),
            _ => t.trim_matches(|c| c == '[' || c == ']').into(),
        }
    };
    let target_host = target.map(host_of);
    let qname = target_host
        .clone()
        .filter(|h| h.parse::<IpAddr>().is_err())
        .or_else(|| search.first().cloned())
        .unwrap_or_else(|| ".".into());
    let mut asked = Vec::new();
    for (server, to) in &net.to_servers {
        let role = match to {
            _ if server.is_loopback() => dns::Role::SplitResolver,
            Some(t) if t.link.is_some() && t.link == tun.map(|l| l.index) => dns::Role::Vpn,
            Some(t)
                if net
                    .links
                    .iter()
                    .any(|l| Some(l.index) == t.link && l.name == split::STACK_DEVICE) =>
            {
                dns::Role::Host
            }
            Some(t) => dns::Role::Astray(link_name(t.link)),
            None => dns::Role::Astray("nowhere (no route)".into()),
        };
        let (answer, millis) = if matches!(role, dns::Role::Astray(_)) {
            (None, 0)
        } else {
            let s = *server;
            let q = qname.clone();
            netns::run_in(ns, move || Ok(dns::ask(s, &q, DNS_WAIT)))?
        };
        asked.push(dns::Asked {
            server: *server,
            role,
            name: qname.clone(),
            answer,
            millis,
        });
    }
    let (fine, found) = dns::judge_inside(&asked, name, &st.names.tunnel, &profile_file);
    r.fine.extend(fine);
    r.findings.extend(found);

    // MTU: to --target, else the VPN's first DNS server.
    r.checked.push(Area::Mtu);
    let Some(tun) = tun else {
        return Ok(r);
    };
    let tunnel_mtu = tun.mtu.unwrap_or(1500);
    let dest = match &target_host {
        Some(h) if h.parse::<std::net::Ipv6Addr>().is_ok() => {
            r.fine.push(format!(
                "mtu: not measured: doctor probes IPv4 paths only; give an IPv4 --target (not {h})"
            ));
            return Ok(r);
        }
        Some(h) => match resolve_target(&st.names.netns, h, &asked) {
            Some(a) => a,
            None => {
                r.findings.push(
                    super::Finding::problem(Area::Mtu, format!("--target {h} does not resolve inside profile {name}"))
                        .evidence(format!("not in /etc/netns/nsvpn-{name}/hosts, and no DNS server of the profile gave an IPv4 address for it"))
                        .why("doctor probes the path to a host inside the VPN, named as the profile names it")
                        .fix("give a host inside the VPN by address, or a name its DNS knows: --target 10.20.1.5"),
                );
                return Ok(r);
            }
        },
        None => match vpn_servers(name, &resolv)
            .into_iter()
            .find_map(|a| match a {
                IpAddr::V4(v) if !v.is_loopback() => Some(v),
                _ => None,
            }) {
            Some(a) => a,
            None => {
                r.fine.push("mtu: not measured: the profile has no IPv4 DNS server to probe; give --target HOST".into());
                return Ok(r);
            }
        },
    };
    let m = netns::run_in(ns, move || {
        let mut prober = mtu::IcmpProber::new(dest, Duration::from_millis(300))?;
        mtu::search(&mut prober, IpAddr::V4(dest), &st.names.tunnel, tunnel_mtu)
    })
    .context("cannot probe the path MTU")?;
    crate::vlog!("MTU search: {} probes in {} ms", m.probes, m.millis);
    let wg = match &p.vpn {
        Vpn::WireGuard { config, .. } => Some(config.display().to_string()),
        _ => None,
    };
    match mtu::judge(&m, name, &profile_file, wg.as_deref()) {
        Ok(line) => r.fine.push(line),
        Err(f) => r.findings.push(f),
    }
    Ok(r)
}
