//! Tunnels that a VPN client (openvpn, openconnect) creates and hands over
//! through nsvpn's hook: what the client says the tunnel is, applying it
//! inside the profile's namespace, the record `status` reads, and the
//! message that tells a waiting `up` how it went.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::dnsfiles::{self, DnsConfig};
use crate::ipnet::IpNet;
use crate::names::Names;
use crate::netlink::{Netlink, Route, errno};
use crate::netns;
use crate::paths;
use crate::profile::Profile;

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

/// A non-empty variable of a client's script environment.
pub fn env_get<'a>(env: &'a BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    env.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

/// The last line of a client's log that contains one of `pats`.
pub fn last_log_line<'a>(log: &'a str, pats: &[&str]) -> Option<&'a str> {
    log.lines()
        .rev()
        .find(|l| pats.iter().any(|p| l.contains(p)))
}

/// The parts of the profile that replace what the VPN provides. Kept in the
/// state file so that the hook never reads profiles.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Overrides {
    pub routes: Option<Vec<IpNet>>,
    pub dns_servers: Option<Vec<IpAddr>>,
    pub dns_search: Option<Vec<String>>,
    pub hosts: Vec<(String, IpAddr)>,
}

impl Overrides {
    pub fn from_profile(p: &Profile) -> Overrides {
        Overrides {
            routes: p.routes.clone(),
            dns_servers: p.dns_servers.clone(),
            dns_search: p.dns_search.clone(),
            hosts: p.hosts.clone(),
        }
    }
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

/// What is known about the tunnel of a client-driven profile, kept in
/// /run/nsvpn/<profile>/tunnel.json by the hook and read by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelRecord {
    /// The last event the client reported: connect, restart, reconnect,
    /// attempt-reconnect, disconnect.
    pub event: String,
    /// Whether the client last said the tunnel is up.
    pub connected: bool,
    /// Seconds since the epoch of the last event.
    pub at: u64,
    /// How many times the tunnel was (re)applied.
    pub connects: u32,
    pub device: String,
    pub addresses: Vec<String>,
    pub mtu: Option<u32>,
    pub routes: Vec<String>,
    pub dns: DnsConfig,
}

impl TunnelRecord {
    pub fn load(profile: &str) -> Option<TunnelRecord> {
        serde_json::from_str(&std::fs::read_to_string(paths::tunnel_record(profile)).ok()?).ok()
    }

    pub fn save(&self, profile: &str) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::util::write_atomic(&paths::tunnel_record(profile), text.as_bytes(), 0o644)
    }

    /// Notes an event that does not change the tunnel (a reconnect attempt,
    /// a disconnect).
    pub fn mark(profile: &str, event: &str, connected: bool) -> Result<()> {
        if let Some(mut r) = TunnelRecord::load(profile) {
            r.event = event.to_string();
            r.connected = connected;
            r.at = crate::util::now_unix();
            r.save(profile)?;
        }
        Ok(())
    }
}

fn exists(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<rtnetlink::Error>())
        .any(|r| errno(r) == Some(nix::errno::Errno::EEXIST as i32))
}

/// Moves the client's tunnel device into the profile's namespace (unless a
/// reconnect kept it there) and applies addresses, MTU, routes and DNS.
/// Returns the record for `status`.
pub fn apply(
    names: &Names,
    setup: &TunnelSetup,
    ov: &Overrides,
    event: &str,
) -> Result<TunnelRecord> {
    if setup.device != names.tunnel {
        bail!(
            "the VPN client reports the tunnel device {:?}, not {:?} as nsvpn asked: refusing to touch it",
            setup.device,
            names.tunnel
        );
    }
    let routes = effective_routes(setup, ov);
    let dns = effective_dns(setup, ov);
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
        netns::enable_ipv6_if_provided(
            ns.as_fd(),
            &setup.device,
            setup.addresses.iter().map(|a| a.local.addr()),
        )?;
        for a in &setup.addresses {
            inner.set_address(tun, a.local, a.peer).await?;
        }
        inner.set_up(tun, setup.mtu).await?;
        for r in &routes {
            if let Err(e) = inner.add_route(&Route::via_link(*r, tun)).await
                && !exists(&e)
            {
                return Err(e);
            }
        }
        anyhow::Ok(())
    })??;
    dnsfiles::write(&names.netns, &names.profile, &dns)?;
    let connects = TunnelRecord::load(&names.profile).map_or(0, |r| r.connects);
    Ok(TunnelRecord {
        event: event.to_string(),
        connected: true,
        at: crate::util::now_unix(),
        connects: connects + 1,
        device: setup.device.clone(),
        addresses: setup
            .addresses
            .iter()
            .map(|a| match a.peer {
                Some(p) => format!("{} peer {p}", a.local),
                None => a.local.to_string(),
            })
            .collect(),
        mtu: setup.mtu,
        routes: routes.iter().map(ToString::to_string).collect(),
        dns,
    })
}

/// What the hook tells the `up` that waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookMessage {
    /// The tunnel is applied; `own_ms` is the hook's own time.
    Connected {
        own_ms: u64,
        summary: String,
    },
    Failed {
        error: String,
    },
}

/// The socket a waiting `up` listens on (root-only, in /run/nsvpn/<p>/private/).
pub struct HookListener {
    sock: UnixDatagram,
    path: PathBuf,
}

impl HookListener {
    pub fn bind(profile: &str) -> Result<HookListener> {
        let path = paths::hook_socket(profile);
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let _ = std::fs::remove_file(&path);
        let sock =
            UnixDatagram::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        sock.set_nonblocking(true)?;
        Ok(HookListener { sock, path })
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The message waiting on the socket, if any.
    pub fn recv(&self) -> Option<HookMessage> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self.sock.recv(&mut buf).ok()?;
        serde_json::from_slice(&buf[..n]).ok()
    }
}

impl Drop for HookListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Tells a waiting `up`, if there is one, how the hook went.
pub fn notify(profile: &str, msg: &HookMessage) {
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
    if let Ok(data) = serde_json::to_vec(msg) {
        let _ = sock.send_to(&data, paths::hook_socket(profile));
    }
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
        let ov = Overrides {
            routes: Some(vec!["10.20.1.0/24".parse().unwrap()]),
            dns_servers: Some(vec![]),
            dns_search: Some(vec!["acme.internal".into()]),
            hosts: vec![("db".into(), "10.20.1.5".parse().unwrap())],
        };
        assert_eq!(
            effective_routes(&setup, &ov),
            vec!["10.20.1.0/24".parse().unwrap()]
        );
        let dns = effective_dns(&setup, &ov);
        assert!(dns.servers.is_empty());
        assert_eq!(dns.search, ["acme.internal"]);
        assert_eq!(dns.hosts.len(), 1);
    }
}
