//! A tunnel inside a profile's namespace, for every kind: what the VPN says
//! the tunnel is ([`TunnelSetup`]), the profile's overrides of it, and the
//! one path that applies it there ([`configure`]; [`apply`] first moves a
//! client's device in).

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::dnsfiles::{self, DnsConfig};
use crate::ipnet::IpNet;
use crate::names::Names;
use crate::netlink::{Netlink, Route};
use crate::netns;
use crate::profile::{Profile, Split};
use crate::split;

/// One address of the tunnel device; `peer` is the far end of a
/// point-to-point link (OpenVPN's net30/p2p topologies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunAddr {
    pub local: IpNet,
    pub peer: Option<IpAddr>,
}

/// What the VPN client says about its tunnel, before the profile's
/// overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TunnelSetup {
    pub device: String,
    pub addresses: Vec<TunAddr>,
    pub mtu: Option<u32>,
    /// Routes the VPN provides; 0.0.0.0/0 (or ::/0) when it takes all traffic.
    pub routes: Vec<IpNet>,
    pub dns_servers: Vec<IpAddr>,
    pub dns_search: Vec<String>,
}

/// The parts of the profile that replace what the VPN provides. Kept in the
/// state file so that the hook never reads profiles.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Overrides {
    pub routes: Option<Vec<IpNet>>,
    pub dns_servers: Option<Vec<IpAddr>>,
    pub dns_search: Option<Vec<String>>,
    pub hosts: Vec<(String, IpAddr)>,
    /// `[split]`: the kill switch's routes and the split resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// The profile's `mtu`: the tunnel's MTU, whatever the VPN says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// `[forward] ports`: the forwards part keeps them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<String>,
    /// The profile's `idle_timeout`, in seconds: the watcher part takes
    /// the profile down once unused for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
}

impl Overrides {
    pub fn from_profile(p: &Profile) -> Overrides {
        Overrides {
            routes: p.routes.clone(),
            dns_servers: p.dns_servers.clone(),
            dns_search: p.dns_search.clone(),
            hosts: p.hosts.clone(),
            split: p.split.clone(),
            mtu: p.mtu,
            forwards: p.forwards.clone(),
            idle_timeout: p.idle_timeout.map(|d| d.as_secs()),
        }
    }
}

/// The tunnel's MTU: the profile's `mtu` if it has one, else the VPN's.
pub fn effective_mtu(setup: &TunnelSetup, ov: &Overrides) -> Option<u32> {
    ov.mtu.or(setup.mtu)
}

/// The routes to set: the profile's `[routes]` if it has them, else the
/// VPN's; duplicates removed.
pub fn effective_routes(setup: &TunnelSetup, ov: &Overrides) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Vec::new();
    for r in ov.routes.as_ref().unwrap_or(&setup.routes) {
        let r = r.trunc();
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

pub fn effective_dns(setup: &TunnelSetup, ov: &Overrides) -> DnsConfig {
    DnsConfig {
        servers: ov
            .dns_servers
            .clone()
            .unwrap_or_else(|| setup.dns_servers.clone()),
        search: ov
            .dns_search
            .clone()
            .unwrap_or_else(|| setup.dns_search.clone()),
        hosts: ov.hosts.clone(),
    }
}

/// What was applied inside the namespace, for records and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// "10.8.0.2/24", "10.8.0.6/32 peer 10.8.0.5".
    pub addresses: Vec<String>,
    pub mtu: Option<u32>,
    pub routes: Vec<IpNet>,
    pub dns: DnsConfig,
}

/// The one path that applies a tunnel inside the profile's namespace, for
/// every kind, once the device `tun` is there: its addresses (IPv6 turned on
/// only if the VPN gave an IPv6 address), MTU and up, the routes (the
/// profile's `[routes]`, else the VPN's) and the namespace's DNS files (the
/// profile's `[dns]`/`[hosts]` over the VPN's).
pub async fn configure(
    inner: &Netlink,
    ns: BorrowedFd<'_>,
    tun: u32,
    names: &Names,
    setup: &TunnelSetup,
    ov: &Overrides,
) -> Result<Applied> {
    netns::enable_ipv6_if_provided(
        ns,
        &names.tunnel,
        setup.addresses.iter().map(|a| a.local.addr()),
    )?;
    for a in &setup.addresses {
        inner.set_address(tun, a.local, a.peer).await?;
    }
    let mtu = effective_mtu(setup, ov);
    inner.set_up(tun, mtu).await?;
    let routes = effective_routes(setup, ov);
    for r in &routes {
        inner.add_route(&Route::via_link(*r, tun)).await?;
    }
    let dns = effective_dns(setup, ov);
    match &ov.split {
        None => {
            dnsfiles::write(&names.netns, &names.profile, &dns)?;
        }
        Some(sp) => {
            // The kill switch of a split profile: beneath the tunnel's
            // routes, the same prefixes and the VPN's DNS servers are
            // unreachable, so that they never take the stack's way out.
            // (The stack carries IPv4 only.) A server the routes cover
            // needs no route of its own: a more specific one would win over
            // the tunnel's.
            let servers = dns
                .servers
                .iter()
                .filter(|a| !routes.iter().any(|r| r.contains(**a)))
                .map(|a| IpNet::host(*a));
            for r in routes.iter().copied().chain(servers) {
                if r.is_ipv4() {
                    inner
                        .add_route(&Route::unreachable(r, split::KILL_METRIC))
                        .await?;
                }
            }
            split::write_dns(names, &dns, sp)?;
        }
    }
    Ok(Applied {
        addresses: setup
            .addresses
            .iter()
            .map(|a| match a.peer {
                Some(p) => format!("{} peer {p}", a.local),
                None => a.local.to_string(),
            })
            .collect(),
        mtu,
        routes,
        dns,
    })
}

/// Moves a client's tunnel device into the profile's namespace (unless a
/// reconnect kept it there) and configures it there.
pub fn apply(names: &Names, setup: &TunnelSetup, ov: &Overrides) -> Result<Applied> {
    if setup.device != names.tunnel {
        bail!(
            "the VPN client reports the tunnel device {:?}, not {:?} as nsvpn asked: refusing to touch it",
            setup.device,
            names.tunnel
        );
    }
    let ns = netns::open(&names.netns)?;
    crate::util::block_on(async {
        let host = Netlink::here()?;
        let inner = Netlink::in_netns(ns.as_fd())?;
        if let Some(l) = host.link_by_name(&setup.device).await? {
            host.move_to_netns(l.index, ns.as_fd()).await?;
        }
        let tun = inner
            .link_by_name(&setup.device)
            .await?
            .ok_or_else(|| {
                anyhow!(
                    "the tunnel device {} is neither on the host nor in {}",
                    setup.device,
                    names.netns
                )
            })?
            .index;
        configure(&inner, ns.as_fd(), tun, names, setup, ov).await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_what_the_vpn_provides() {
        let setup = TunnelSetup {
            device: "nsvt-x".into(),
            routes: vec![
                "10.20.0.0/16".parse().unwrap(),
                "10.20.0.0/16".parse().unwrap(),
            ],
            dns_servers: vec!["10.20.0.53".parse().unwrap()],
            dns_search: vec!["corp.internal".into()],
            ..Default::default()
        };
        let none = Overrides::default();
        assert_eq!(
            effective_routes(&setup, &none),
            vec!["10.20.0.0/16".parse().unwrap()]
        );
        assert_eq!(effective_dns(&setup, &none).servers, setup.dns_servers);
        let wg = TunnelSetup {
            mtu: Some(1420),
            ..setup.clone()
        };
        assert_eq!(effective_mtu(&wg, &none), Some(1420));
        let ov = Overrides {
            routes: Some(vec!["10.20.1.0/24".parse().unwrap()]),
            dns_servers: Some(vec![]),
            dns_search: Some(vec!["acme.internal".into()]),
            hosts: vec![("db".into(), "10.20.1.5".parse().unwrap())],
            split: None,
            mtu: Some(1380),
            forwards: vec![],
            idle_timeout: None,
        };
        assert_eq!(
            effective_routes(&setup, &ov),
            vec!["10.20.1.0/24".parse().unwrap()]
        );
        let dns = effective_dns(&setup, &ov);
        assert!(dns.servers.is_empty());
        assert_eq!(dns.search, ["acme.internal"]);
        assert_eq!(dns.hosts.len(), 1);
        assert_eq!(effective_mtu(&wg, &ov), Some(1380));
        assert_eq!(effective_mtu(&setup, &ov), Some(1380));
    }
}
