//! Bringing up a WireGuard profile's tunnel, once nsvpn has made the
//! namespace and the veth pair: create (kernel) or start (wireguard-go) the
//! device in the host namespace, configure it, move it in, address and route
//! it, write DNS, and wait for the first handshake.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::{DeviceConfig, Implementation, TRIGGER_KEEPALIVE, userspace};
use crate::backend::wireguard::wgquick::WgQuick;
use crate::names::Names;
use crate::netlink::{Netlink, errno};
use crate::paths;
use crate::profile::{Profile, Vpn};
use crate::state::State;
use crate::tunnel::{Overrides, TunAddr, TunnelSetup};
use crate::util;
use crate::vlog;

pub const DEFAULT_MTU: u32 = 1420;

/// How a WireGuard `up` went.
pub struct Connected {
    pub backend: Implementation,
    /// nsvpn's own work on the tunnel.
    pub plumbing: Duration,
    pub handshake: Duration,
}

pub async fn link_index(nl: &Netlink, name: &str) -> Result<u32> {
    nl.link_by_name(name)
        .await?
        .map(|l| l.index)
        .ok_or_else(|| anyhow!("the link {name} vanished"))
}

/// What the wg-quick file provides, in the form the profile's overrides
/// apply to: its addresses and MTU, every peer's AllowedIPs as routes, its
/// DNS line.
pub fn provided(names: &Names, wg: &WgQuick) -> TunnelSetup {
    TunnelSetup {
        device: names.tunnel.clone(),
        routes: wg
            .peers
            .iter()
            .flat_map(|p| p.allowed_ips.iter().copied())
            .collect(),
        addresses: wg
            .addresses
            .iter()
            .map(|a| TunAddr {
                local: *a,
                peer: None,
            })
            .collect(),
        mtu: Some(wg.mtu.unwrap_or(DEFAULT_MTU)),
        dns_servers: wg.dns_servers.clone(),
        dns_search: wg.dns_search.clone(),
    }
}

/// Creates, configures and moves the tunnel, then waits for the handshake.
#[allow(clippy::too_many_arguments)]
pub async fn connect(
    profile: &Profile,
    names: &Names,
    wg: &WgQuick,
    device: &DeviceConfig,
    force_userspace: bool,
    ns: BorrowedFd<'_>,
    timeout: Duration,
    st: &mut State,
) -> Result<Connected> {
    let t0 = Instant::now();
    let host = Netlink::here()?;
    let inner = Netlink::in_netns(ns)?;
    let backend = if force_userspace {
        Implementation::Userspace
    } else {
        match host.create_wireguard(&names.tunnel).await {
            Ok(()) => Implementation::Kernel,
            Err(e) if matches!(errno(&e), Some(c) if c == nix::errno::Errno::EOPNOTSUPP as i32 || c == nix::errno::Errno::EINVAL as i32) =>
            {
                vlog!("no WireGuard in this kernel ({e}); using wireguard-go");
                Implementation::Userspace
            }
            Err(e) => {
                return Err(anyhow!(e)
                    .context(format!("cannot create the WireGuard link {}", names.tunnel)));
            }
        }
    };
    st.backend.implementation = Some(backend);
    st.backend.listen_port = device.listen_port;
    let log = paths::log_file(&profile.name, "wireguard-go");
    if backend == Implementation::Userspace {
        if let Some(port) = device.listen_port {
            userspace::check_port_free(port)
                .map_err(|e| port_taken(e, profile, device.listen_port))?;
        }
        let pid = userspace::spawn(&names.tunnel, &log)?;
        crate::vtrace!("wireguard-go started (pid {pid})");
        st.pid = Some(pid);
    }
    st.save()?;
    backend
        .configure(&names.tunnel, device)
        .await
        .map_err(|e| match st.pid {
            Some(pid) => userspace::not_ready(e, pid, &log),
            None => e,
        })
        .map_err(|e| port_taken(e, profile, device.listen_port))?;
    crate::vtrace!("{} configured", names.tunnel);
    let tun = link_index(&host, &names.tunnel).await?;
    host.move_to_netns(tun, ns).await?;
    crate::vtrace!("{} moved into the namespace", names.tunnel);
    let tun = link_index(&inner, &names.tunnel).await?;
    // WireGuard says no goodbye: its device may go with the veth pair, in
    // one batch, when the profile goes down.
    inner.set_group(tun, crate::names::LINK_GROUP).await?;
    // Kernel WireGuard opens its socket (on the host) only when the link
    // comes up, inside `configure`.
    crate::tunnel::configure(
        &inner,
        ns,
        tun,
        names,
        &provided(names, wg),
        &Overrides::from_profile(profile),
    )
    .await
    .map_err(|e| port_taken(e, profile, device.listen_port))?;
    let plumbing = t0.elapsed();
    vlog!(
        "tunnel {} configured ({:?}); waiting for the handshake",
        names.tunnel,
        plumbing
    );

    let t1 = Instant::now();
    handshake(backend, names, device, ns, st.pid, timeout).await?;
    Ok(Connected {
        backend,
        plumbing,
        handshake: t1.elapsed(),
    })
}

/// A configuration refused because another socket holds the file's
/// ListenPort becomes an error that says whose: a profile that is up (its
/// state records its port), else another program. Any other error is kept.
fn port_taken(e: anyhow::Error, profile: &Profile, port: Option<u16>) -> anyhow::Error {
    let Some(port) = port.filter(|_| super::addr_in_use(&e)) else {
        return e;
    };
    let owner = State::all()
        .into_iter()
        .find(|s| s.profile != profile.name && s.backend.listen_port == Some(port))
        .map(|s| s.profile);
    anyhow!(port_in_use(profile, port, owner.as_deref()))
}

/// The error for a ListenPort that `owner` (a profile), or another program,
/// already holds.
pub fn port_in_use(profile: &Profile, port: u16, owner: Option<&str>) -> String {
    let config = match &profile.vpn {
        Vpn::WireGuard { config, .. } => config.display().to_string(),
        _ => String::new(),
    };
    let whose = match owner {
        Some(o) => format!(
            "is in use by profile {o:?}, which is up: two profiles cannot listen on one port. \
             Give one of them another ListenPort, or remove the line from one of them"
        ),
        None => format!(
            "is in use by another program on this machine (no nsvpn profile holds it): find it \
             with `ss -lunp 'sport = :{port}'` (a socket with no process is a kernel WireGuard \
             interface: `wg show all listen-port`) and stop it, or give this profile another \
             ListenPort, or remove the line"
        ),
    };
    format!(
        "profile {:?} ({}): field `vpn.config` ({config}): ListenPort {port} {whose} (WireGuard \
         then picks a free port; a client needs a fixed one only if its server connects to it)",
        profile.name,
        profile.path.display()
    )
}

/// Turns keepalives on (which sends one at once and so starts a handshake),
/// waits until every peer with an endpoint has completed a handshake, then
/// sets each keepalive back to what the file says.
async fn handshake(
    backend: Implementation,
    names: &Names,
    device: &DeviceConfig,
    ns: BorrowedFd<'_>,
    pid: Option<u32>,
    timeout: Duration,
) -> Result<()> {
    let with_endpoint: Vec<_> = device
        .peers
        .iter()
        .filter(|p| p.endpoint.is_some())
        .collect();
    if with_endpoint.is_empty() {
        return Ok(());
    }
    let trigger: Vec<_> = with_endpoint
        .iter()
        .map(|p| (p.public_key, p.keepalive.unwrap_or(TRIGGER_KEEPALIVE)))
        .collect();
    backend.set_keepalives(&names.tunnel, ns, &trigger).await?;
    let start = Instant::now();
    // The handshake takes a round trip and some crypto: the first looks
    // come soon after it could be done, then every 20 ms. (Neither
    // WireGuard implementation announces a handshake.)
    let mut pause = Duration::from_millis(1);
    loop {
        let peers = backend.peers(&names.tunnel, ns).await?;
        let waiting: Vec<_> = with_endpoint
            .iter()
            .filter(|p| {
                let key = p.public_key.to_base64();
                !peers
                    .iter()
                    .any(|s| s.public_key == key && s.last_handshake.is_some())
            })
            .collect();
        if waiting.is_empty() {
            break;
        }
        if let Some(pid) = pid
            && !util::alive(pid)
        {
            bail!("wireguard-go (pid {pid}) exited while waiting for the handshake");
        }
        if start.elapsed() >= timeout {
            let list: Vec<String> = waiting
                .iter()
                .map(|p| {
                    format!(
                        "peer {} at {}{}",
                        p.public_key.to_base64(),
                        p.endpoint.map(|e| e.to_string()).unwrap_or_default(),
                        p.endpoint_text
                            .as_ref()
                            .map(|t| format!(" ({t})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            bail!(
                "no WireGuard handshake after {:.1} s with {}: check that the endpoint is reachable \
                 from this machine, that the server knows this profile's public key, and that the \
                 peer's PublicKey is right (nsvpn up --timeout SECS waits longer)",
                timeout.as_secs_f64(),
                list.join(", ")
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    let restore: Vec<_> = with_endpoint
        .iter()
        .filter(|p| p.keepalive.is_none())
        .map(|p| (p.public_key, 0))
        .collect();
    if !restore.is_empty() {
        backend.set_keepalives(&names.tunnel, ns, &restore).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_listen_port_names_its_holder() {
        let profile = Profile::parse(
            "bravo",
            std::path::Path::new("/etc/nsvpn/profiles/bravo.toml"),
            "[vpn]\nkind = \"wireguard\"\nconfig = \"/etc/nsvpn/bravo.conf\"\n",
        )
        .unwrap();
        insta::assert_snapshot!(format!(
            "{}\n{}",
            port_in_use(&profile, 51820, Some("alpha")),
            port_in_use(&profile, 51820, None)
        ));
    }
}
