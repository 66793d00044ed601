//! `nsvpn up <profile>`: create the namespace, the veth pair and the tunnel,
//! and return once the tunnel carries traffic. All or nothing: any failure
//! removes what this `up` created.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::dnsfiles::{self, DnsConfig};
use crate::ipnet::IpNet;
use crate::names::Names;
use crate::netlink::{Netlink, Route, errno};
use crate::netns;
use crate::profile::{Profile, Vpn};
use crate::state::{self, Lock, State};
use crate::teardown;
use crate::util::{self, now_unix};
use crate::vlog;
use crate::wgquick::{self, WgQuick};
use crate::wireguard::{Backend, DeviceConfig, TRIGGER_KEEPALIVE, userspace};

pub const DEFAULT_MTU: u32 = 1420;

#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for the first handshake.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(20),
        }
    }
}

pub enum Outcome {
    Up {
        plumbing: Duration,
        handshake: Duration,
        backend: Backend,
    },
    AlreadyUp,
}

/// Whether the profile is up: complete state and a live namespace.
pub fn is_up(profile: &str) -> bool {
    open_if_up(profile).is_some()
}

/// The profile's namespace, opened, if the profile is up.
pub fn open_if_up(profile: &str) -> Option<std::os::fd::OwnedFd> {
    if !State::load(profile).is_some_and(|s| s.complete) {
        return None;
    }
    netns::open(&Names::for_profile(profile).netns).ok()
}

pub fn run(dir: &Path, name: &str, opts: &Options) -> Result<()> {
    let profile = Profile::load(dir, name)?;
    match up(&profile, opts)? {
        Outcome::AlreadyUp => println!("nsvpn: profile {name} is already up"),
        Outcome::Up {
            plumbing,
            handshake,
            backend,
        } => println!(
            "nsvpn: profile {name} is up (WireGuard, {}; nsvpn's own work {} ms, handshake {} ms). Run: nsvpn exec {name} -- <command>",
            backend.implementation(),
            plumbing.as_millis(),
            handshake.as_millis()
        ),
    }
    Ok(())
}

/// Reads and checks everything the profile needs before the machine is touched.
fn prepare_wireguard(profile: &Profile, config: &Path) -> Result<(WgQuick, DeviceConfig)> {
    let at = || {
        format!(
            "profile {:?} ({}): field `vpn.config` ({})",
            profile.name,
            profile.path.display(),
            config.display()
        )
    };
    let text = std::fs::read_to_string(config).with_context(at)?;
    let wg = wgquick::parse(&text).map_err(|e| anyhow!("{}: {e}", at()))?;
    for w in &wg.warnings {
        eprintln!("nsvpn: warning: {}: {w}", config.display());
    }
    let device = DeviceConfig::from_wgquick(&wg).with_context(at)?;
    Ok((wg, device))
}

pub fn up(profile: &Profile, opts: &Options) -> Result<Outcome> {
    let Vpn::WireGuard {
        config,
        userspace: force_userspace,
    } = &profile.vpn
    else {
        bail!(
            "profile {:?} ({}): kind = {:?} is not supported by this build of nsvpn yet; \
             only \"wireguard\" profiles can be brought up",
            profile.name,
            profile.path.display(),
            profile.vpn.kind()
        );
    };
    let (wg, device) = prepare_wireguard(profile, config)?;
    if *force_userspace {
        userspace::find_program()?;
    }
    let names = Names::for_profile(&profile.name);
    let _lock = Lock::acquire(&profile.name)?;
    if is_up(&profile.name) {
        return Ok(Outcome::AlreadyUp);
    }
    if teardown::any_trace(&names) {
        eprintln!(
            "nsvpn: profile {} has traces of an earlier `up` that did not finish; removing them first",
            profile.name
        );
        teardown::teardown(&names, false)?;
    }
    util::block_on(preflight(profile, &names))??;

    let mut st = State {
        profile: profile.name.clone(),
        kind: profile.vpn.kind().into(),
        names: names.clone(),
        veth: profile.veth,
        implementation: None,
        pid: None,
        started: now_unix(),
        complete: false,
    };
    st.save()?;
    let result = util::block_on(bring_up(
        profile,
        &names,
        &wg,
        &device,
        *force_userspace,
        opts,
        &mut st,
    ))
    .and_then(|r| r);
    match result {
        Ok(o) => {
            st.complete = true;
            if let Err(e) = st.save() {
                let _ = teardown::teardown(&names, true);
                return Err(e);
            }
            Ok(o)
        }
        Err(e) => {
            vlog!("up failed, rolling back: {e:#}");
            if let Err(t) = teardown::teardown(&names, true) {
                return Err(e.context(format!("and the rollback failed too: {t:#}")));
            }
            Err(e)
        }
    }
}

/// Refuses names and addresses that another profile or the host already uses.
async fn preflight(profile: &Profile, names: &Names) -> Result<()> {
    for other in State::all() {
        if other.profile == profile.name {
            continue;
        }
        let mine = IpNet::from(profile.veth.subnet);
        let theirs = IpNet::from(other.veth.subnet);
        if mine.contains(theirs.network()) || theirs.contains(mine.network()) {
            bail!(
                "profile {:?}: its veth subnet {} overlaps {} of profile {:?}, which is up; \
                 give one of them another subnet with [veth] subnet = \"...\"",
                profile.name,
                profile.veth.subnet,
                other.veth.subnet,
                other.profile
            );
        }
        let theirs_names = [
            &other.names.host_veth,
            &other.names.tunnel,
            &other.names.ns_veth,
        ];
        if [&names.host_veth, &names.tunnel]
            .iter()
            .any(|n| theirs_names.contains(n))
        {
            bail!(
                "profile {:?}: its interface names clash with profile {:?}, which is up; rename one of them",
                profile.name,
                other.profile
            );
        }
    }
    let host = Netlink::here()?;
    for name in [&names.host_veth, &names.tunnel] {
        if host.link_by_name(name).await?.is_some() {
            bail!(
                "an interface called {name} already exists on this machine and nsvpn did not create it; remove it or rename it"
            );
        }
    }
    for a in host.addresses().await? {
        if IpNet::from(profile.veth.subnet).contains(a.net.addr()) {
            bail!(
                "profile {:?}: the host already has the address {} inside the veth subnet {}; \
                 choose another with [veth] subnet = \"...\" in {}",
                profile.name,
                a.net,
                profile.veth.subnet,
                profile.path.display()
            );
        }
    }
    Ok(())
}

async fn link_index(nl: &Netlink, name: &str) -> Result<u32> {
    nl.link_by_name(name)
        .await?
        .map(|l| l.index)
        .ok_or_else(|| anyhow!("the link {name} vanished"))
}

async fn add_route_once(nl: &Netlink, route: &Route) -> Result<()> {
    match nl.add_route(route).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let exists = e
                .chain()
                .filter_map(|c| c.downcast_ref::<rtnetlink::Error>())
                .any(|r| errno(r) == Some(nix::errno::Errno::EEXIST as i32));
            if exists { Ok(()) } else { Err(e) }
        }
    }
}

/// The routes inside the namespace: `[routes] include`, else every peer's
/// AllowedIPs.
pub fn tunnel_routes(profile: &Profile, wg: &WgQuick) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Vec::new();
    let wanted: Vec<IpNet> = match &profile.routes {
        Some(r) => r.clone(),
        None => wg
            .peers
            .iter()
            .flat_map(|p| p.allowed_ips.iter().copied())
            .collect(),
    };
    for r in wanted {
        let r = r.trunc();
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

pub fn dns_config(profile: &Profile, wg: &WgQuick) -> DnsConfig {
    DnsConfig {
        servers: profile
            .dns_servers
            .clone()
            .unwrap_or_else(|| wg.dns_servers.clone()),
        search: profile
            .dns_search
            .clone()
            .unwrap_or_else(|| wg.dns_search.clone()),
        hosts: profile.hosts.clone(),
    }
}

async fn bring_up(
    profile: &Profile,
    names: &Names,
    wg: &WgQuick,
    device: &DeviceConfig,
    force_userspace: bool,
    opts: &Options,
    st: &mut State,
) -> Result<Outcome> {
    let t0 = Instant::now();
    netns::create(&names.netns)?;
    let ns = netns::open(&names.netns)?;
    let host = Netlink::here()?;
    let inner = Netlink::in_netns(ns.as_fd())?;
    vlog!("namespace {} created ({:?})", names.netns, t0.elapsed());

    let lo = link_index(&inner, "lo").await?;
    inner.set_up(lo, None).await?;
    netns::set_net_sysctl(ns.as_fd(), "ipv4/ping_group_range", "0 2147483647")?;

    let v = profile.veth;
    host.create_veth(&names.host_veth, &names.ns_veth, ns.as_fd())
        .await?;
    let hv = link_index(&host, &names.host_veth).await?;
    host.add_address(
        hv,
        IpNet::new(v.host.into(), v.subnet.prefix()).map_err(|e| anyhow!(e))?,
    )
    .await?;
    host.set_up(hv, None).await?;
    let nv = link_index(&inner, &names.ns_veth).await?;
    inner
        .add_address(
            nv,
            IpNet::new(v.namespace.into(), v.subnet.prefix()).map_err(|e| anyhow!(e))?,
        )
        .await?;
    inner.set_up(nv, None).await?;
    vlog!(
        "veth {} <-> {} ({:?})",
        names.host_veth,
        names.ns_veth,
        t0.elapsed()
    );

    let backend = if force_userspace {
        Backend::Userspace
    } else {
        match host.create_wireguard(&names.tunnel).await {
            Ok(()) => Backend::Kernel,
            Err(e) if matches!(errno(&e), Some(c) if c == nix::errno::Errno::EOPNOTSUPP as i32 || c == nix::errno::Errno::EINVAL as i32) =>
            {
                vlog!("no WireGuard in this kernel ({e}); using wireguard-go");
                Backend::Userspace
            }
            Err(e) => {
                return Err(anyhow!(e)
                    .context(format!("cannot create the WireGuard link {}", names.tunnel)));
            }
        }
    };
    st.implementation = Some(backend.implementation());
    if backend == Backend::Userspace {
        let log = state::log_path(&profile.name, "wireguard-go");
        let pid = userspace::spawn(&names.tunnel, &log)?;
        st.pid = Some(pid);
        st.save()?;
        userspace::wait_for_socket(&names.tunnel, pid, &log, Duration::from_secs(10))?;
    } else {
        st.save()?;
    }
    backend.configure(&names.tunnel, device).await?;
    let tun = link_index(&host, &names.tunnel).await?;
    host.move_to_netns(tun, ns.as_fd()).await?;
    let tun = link_index(&inner, &names.tunnel).await?;
    for a in &wg.addresses {
        inner.add_address(tun, *a).await?;
    }
    inner
        .set_up(tun, Some(wg.mtu.unwrap_or(DEFAULT_MTU)))
        .await?;
    for r in tunnel_routes(profile, wg) {
        add_route_once(&inner, &Route::via_link(r, tun)).await?;
    }
    dnsfiles::write(&names.netns, &profile.name, &dns_config(profile, wg))?;
    let plumbing = t0.elapsed();
    vlog!(
        "tunnel {} configured ({:?}); waiting for the handshake",
        names.tunnel,
        plumbing
    );

    let t1 = Instant::now();
    handshake(backend, names, device, ns.as_fd(), st.pid, opts.timeout).await?;
    Ok(Outcome::Up {
        plumbing,
        handshake: t1.elapsed(),
        backend,
    })
}

/// Turns keepalives on (which sends one at once and so starts a handshake),
/// waits until every peer with an endpoint has completed a handshake, then
/// sets each keepalive back to what the file says.
async fn handshake(
    backend: Backend,
    names: &Names,
    device: &DeviceConfig,
    ns: std::os::fd::BorrowedFd<'_>,
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
        tokio::time::sleep(Duration::from_millis(20)).await;
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
