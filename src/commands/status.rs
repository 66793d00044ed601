//! `nsvpn status [<profile>] [--json]`: state, tunnel health, addresses,
//! routes, DNS and the processes inside.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::backend::client::hook::TunnelRecord;
use crate::backend::ipsec::SaInfo as IpsecSa;
use crate::backend::program as client_program;
use crate::backend::wireguard::{Implementation, PeerStatus};
use crate::caller::{Action, Caller, Mode};
use crate::dnsfiles;
use crate::forward;
use crate::idle::{self, Idle};
use crate::lifecycle::parts::{self, Check};
use crate::lifecycle::teardown;
use crate::lifecycle::{Assessment, Health, assess, state_word};
use crate::names::{self, Names};
use crate::netlink::{Address, Link, Netlink, Route};
use crate::netns::{self, Process};
use crate::paths;
use crate::procs::Procs;
use crate::profile::{self, Profile};
use crate::split;
use crate::state::State;
use crate::util::{self, now_unix};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub profile: String,
    /// "up", "down", "broken" (traces exist but the tunnel is not working),
    /// or "invalid" (down, and its profile file does not load: `up` would
    /// refuse it; `list` says the same).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub kind: Option<String>,
    pub namespace: String,
    pub interfaces: Interfaces,
    pub veth: Option<VethReport>,
    pub implementation: Option<Implementation>,
    /// The tunnel's process (wireguard-go, openvpn, openconnect), if any.
    pub client: Option<String>,
    pub pid: Option<u32>,
    /// When `up` began (seconds since the epoch).
    pub since: Option<u64>,
    /// How long the profile has been connected (since its `up` finished),
    /// in seconds.
    pub connected_for: Option<u64>,
    /// A profile with an `idle_timeout`: in use or idle, and when it goes
    /// down by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
    /// For openvpn/openconnect: what the client last reported.
    pub tunnel: Option<TunnelReport>,
    /// The tunnel device's counters.
    pub traffic: Option<Traffic>,
    pub addresses: Vec<AddressReport>,
    pub routes: Vec<RouteReport>,
    pub dns: Option<DnsReport>,
    pub peers: Vec<PeerStatus>,
    /// An IPsec profile's SA, as its charon lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<IpsecSa>,
    pub processes: Vec<Process>,
    /// The runtime's parts, in the order `up` makes them.
    pub parts: Vec<PartReport>,
    /// A split profile's path to the host's network and its DNS split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitReport>,
    /// The forwards kept while the profile is up (`[forward] ports`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwards: Option<ForwardsReport>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    /// Whether what the VPN does not route leaves through the host.
    pub internet: bool,
    /// Prefixes that always leave through the host.
    pub direct: Vec<String>,
    /// Which names go where; none when every name goes to the VPN's servers.
    pub dns: Option<SplitDnsReport>,
    /// The user-mode network stack (slirp4netns).
    pub stack: Option<PartReport>,
    /// The split resolver (dnsmasq), if names are split.
    pub resolver: Option<PartReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitDnsReport {
    /// Names under these go to `vpn_servers`, and nowhere else.
    pub domains: Vec<String>,
    pub vpn_servers: Vec<String>,
    /// Where every other name goes: the host's resolver, through the stack.
    pub other_names: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForwardsReport {
    pub ports: Vec<ForwardReport>,
    /// The forwarder process.
    pub part: Option<PartReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForwardReport {
    /// Where it listens, on the host.
    pub listen: String,
    /// What it connects to, inside.
    pub target: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    pub name: &'static str,
    /// What it is on the machine: "nsvpn-corp", "nsvt-corp, openvpn pid 42".
    pub what: String,
    /// "ok", "degraded", "reconnecting" or "broken".
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Interfaces {
    pub host_veth: String,
    pub namespace_veth: String,
    pub tunnel: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VethReport {
    pub subnet: String,
    pub host: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddressReport {
    pub interface: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    pub destination: String,
    pub interface: Option<String>,
    pub gateway: Option<String>,
    /// An `unreachable` route: a split profile's kill switch.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreachable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TunnelReport {
    pub connected: bool,
    /// While the client reconnects: since when (seconds since the epoch).
    pub reconnecting_since: Option<u64>,
    /// While the client reconnects: the last error it reported.
    pub last_error: Option<String>,
    /// connect, restart, reconnect, attempt-reconnect, disconnect
    pub last_event: String,
    pub last_event_at: u64,
    pub connects: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Traffic {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsReport {
    pub servers: Vec<String>,
    pub search: Vec<String>,
}

fn base_report(name: &str, profile: Option<&Profile>) -> Report {
    let n = Names::for_profile(name);
    Report {
        profile: name.to_string(),
        state: "down".into(),
        description: profile.and_then(|p| p.description.clone()),
        kind: profile.map(|p| p.vpn.kind().to_string()),
        namespace: n.netns.clone(),
        interfaces: Interfaces {
            host_veth: n.host_veth,
            namespace_veth: n.ns_veth,
            tunnel: n.tunnel,
        },
        veth: profile.map(|p| VethReport {
            subnet: p.veth.subnet.to_string(),
            host: p.veth.host.to_string(),
            namespace: p.veth.namespace.to_string(),
        }),
        implementation: None,
        client: None,
        pid: None,
        since: None,
        connected_for: None,
        idle: None,
        tunnel: None,
        traffic: None,
        addresses: vec![],
        routes: vec![],
        dns: None,
        peers: vec![],
        ipsec: None,
        processes: vec![],
        parts: vec![],
        split: None,
        forwards: None,
        problems: vec![],
    }
}

/// The one look at /proc that every profile's report shares, taken when
/// the first profile that is up needs it.
pub type SharedProcs = std::cell::LazyCell<Procs>;

/// Gathers the report of one profile.
pub fn gather(name: &str, profile: Option<&Profile>, procs: &SharedProcs) -> Report {
    let mut r = base_report(name, profile);
    let Some(st) = State::load(name) else {
        note_stateless(&mut r);
        return r;
    };
    gather_state(&mut r, name, &st);
    gather_health(&mut r, name, &st);
    gather_split(&mut r, &st);
    // Health could not open it either, and said so.
    let Ok(ns) = netns::open(&r.namespace) else {
        return r;
    };
    gather_network(&mut r, &st, ns.as_fd());
    match crate::backend::ipsec_sa(name, &st) {
        Ok(sa) => r.ipsec = sa,
        Err(e) => r.problems.push(e),
    }
    gather_dns(&mut r);
    r.processes = parts::user_processes(&st.names, procs);
    gather_idle(&mut r, &st, util::now_ms());
    r
}

/// How long it has been connected, and for a profile with an
/// `idle_timeout`, whether it is in use (the processes just found, what the
/// watcher last heard) or idle and for how long.
fn gather_idle(r: &mut Report, st: &State, now_ms: u64) {
    if !matches!(r.state.as_str(), "up" | "reconnecting") {
        return;
    }
    let connected = st.connected.unwrap_or(st.started);
    r.connected_for = Some((now_ms / 1000).saturating_sub(connected));
    if let Some(t) = st.overrides.idle_timeout {
        let record = idle::Record::load(&st.profile).unwrap_or(idle::Record {
            last_used_ms: connected * 1000,
            by: "up".into(),
            forward_connections: 0,
        });
        r.idle = Some(idle::judge(
            std::time::Duration::from_secs(t),
            &record,
            r.processes.len(),
            now_ms,
        ));
    }
}

/// A profile that nsvpn has no state for: down, unless its namespace exists
/// (then a crashed `up` left it, and the profile is broken).
fn note_stateless(r: &mut Report) {
    if paths::netns(&r.namespace).exists() {
        r.state = "broken".into();
        r.problems
            .push("the namespace exists but nsvpn has no state for it (a crashed `up`?): run `nsvpn down`".into());
    }
}

/// What `up` recorded: kind, veth, implementation, client process, start
/// time, and what a client-driven tunnel last reported.
fn gather_state(r: &mut Report, name: &str, st: &State) {
    r.kind = Some(st.kind.to_string());
    r.veth = Some(VethReport {
        subnet: st.veth.subnet.to_string(),
        host: st.veth.host.to_string(),
        namespace: st.veth.namespace.to_string(),
    });
    r.implementation = st.backend.implementation;
    r.client = st.pid.map(|_| client_program(st).to_string());
    r.pid = st.pid;
    r.tunnel = TunnelRecord::load(name).map(|t| TunnelReport {
        connected: t.connected,
        last_event: t.event,
        last_event_at: t.at,
        connects: t.connects,
        reconnecting_since: None,
        last_error: None,
    });
    r.since = Some(st.started);
}

/// The state (up, reconnecting, broken) and its problem, from the one
/// judgement `list` and `exec` use too; the tunnel's line follows it.
fn gather_health(r: &mut Report, name: &str, st: &State) {
    let Assessment {
        health,
        reconnect,
        parts,
    } = assess(name);
    for (part, check) in &parts {
        if let Check::Degraded(why) = check {
            r.problems.push(why.clone());
        }
        r.parts.push(PartReport {
            name: part.name(),
            what: part.show(st),
            state: check.word(),
        });
    }
    match health {
        Health::Up(_) | Health::Down => r.state = "up".into(),
        Health::Reconnecting(_, why) => {
            r.state = "reconnecting".into();
            r.problems.push(why);
        }
        Health::Broken(why) => {
            r.state = "broken".into();
            r.problems.push(format!(
                "{why}; run `nsvpn down {name}` then `nsvpn up {name}`"
            ));
        }
    }
    if let Some(t) = &mut r.tunnel {
        t.connected = r.state == "up";
        t.reconnecting_since = reconnect.as_ref().map(|c| c.since);
        t.last_error = reconnect.and_then(|c| c.last_error);
    }
}

/// The split and the kept forwards, from the state, the resolver's servers
/// file and the parts' reports.
fn gather_split(r: &mut Report, st: &State) {
    let part = |name: &str| r.parts.iter().find(|p| p.name == name).cloned();
    if let Some(sp) = &st.overrides.split {
        r.split = Some(SplitReport {
            internet: sp.internet,
            direct: sp.direct.iter().map(ToString::to_string).collect(),
            dns: split::read_dns_split(&st.profile).map(|d| SplitDnsReport {
                domains: d.domains,
                vpn_servers: d.vpn_servers.iter().map(ToString::to_string).collect(),
                other_names: format!(
                    "the host's resolver, through the stack's {}",
                    split::STACK_DNS
                ),
            }),
            stack: part("stack"),
            resolver: part("resolver"),
        });
    }
    if !st.overrides.forwards.is_empty() {
        let ports = forward::parse_all(&st.overrides.forwards)
            .map(|specs| {
                specs
                    .iter()
                    .map(|s| ForwardReport {
                        listen: s.listen.to_string(),
                        target: s.target(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        r.forwards = Some(ForwardsReport {
            ports,
            part: part("forwards"),
        });
    }
}

/// What netlink (and the tunnel's device) report inside the namespace.
struct Network {
    /// Every link's name, by index.
    names: BTreeMap<u32, String>,
    addrs: Vec<Address>,
    routes: Vec<Route>,
    /// The tunnel device, if it is there.
    tunnel_link: Option<Link>,
    /// The tunnel's peers, for a WireGuard tunnel that is there.
    peers: Option<Result<Vec<PeerStatus>>>,
}

/// Reads the links, addresses and routes of the namespace `ns`, and the
/// peers of the device `tunnel` when it is there and `backend` is known.
fn read_network(
    ns: BorrowedFd<'_>,
    tunnel: &str,
    backend: Option<Implementation>,
) -> Result<Network> {
    util::block_on(async {
        let inner = Netlink::in_netns(ns)?;
        let links = inner.links().await?;
        let names: BTreeMap<u32, String> =
            links.iter().map(|l| (l.index, l.name.clone())).collect();
        let addrs = inner.addresses().await?;
        let routes = inner.routes().await?;
        let tunnel_link = links.iter().find(|l| l.name == tunnel).cloned();
        let tunnel_present = tunnel_link.is_some();
        let peers = match backend {
            Some(b) if tunnel_present => Some(b.peers(tunnel, ns).await),
            _ => None,
        };
        anyhow::Ok(Network {
            names,
            addrs,
            routes,
            tunnel_link,
            peers,
        })
    })
    .and_then(|gathered| gathered)
}

/// The namespace's traffic, addresses, routes and peers, or the problem
/// that kept them from being read.
fn gather_network(r: &mut Report, st: &State, ns: BorrowedFd<'_>) {
    let backend = st.backend.implementation;
    let tunnel = r.interfaces.tunnel.clone();
    match read_network(ns, &tunnel, backend) {
        Ok(net) => {
            r.traffic = net.tunnel_link.as_ref().map(|l| Traffic {
                rx_bytes: l.rx_bytes,
                tx_bytes: l.tx_bytes,
            });
            let name_of = |i: u32| {
                net.names
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| format!("#{i}"))
            };
            r.addresses = net
                .addrs
                .iter()
                .filter(|a| name_of(a.link) != "lo" && !is_link_local_v6(a.net.addr()))
                .map(|a| AddressReport {
                    interface: name_of(a.link),
                    address: a.net.to_string(),
                })
                .collect();
            r.routes = net
                .routes
                .iter()
                .filter(|rt| !is_link_local_v6(rt.dest.addr()) || rt.dest.prefix() == 0)
                .map(|rt| RouteReport {
                    destination: rt.dest.to_string(),
                    interface: rt.link.map(name_of),
                    gateway: rt.gateway.map(|g| g.to_string()),
                    unreachable: rt.unreachable,
                })
                .collect();
            match net.peers {
                Some(Ok(p)) => r.peers = p,
                Some(Err(e)) => r.problems.push(peers_problem(&e, &r.profile)),
                None => {}
            }
        }
        Err(e) => r
            .problems
            .push(format!("cannot read the namespace's network: {e:#}")),
    }
}

/// Why the tunnel's peers are not shown. A user whom `[access]` admits
/// (file-capability mode) may not open wireguard-go's socket, which hands
/// out the private key: that is no fault of the profile, and root can ask.
fn peers_problem(e: &anyhow::Error, profile: &str) -> String {
    let denied = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    });
    if denied && !nix::unistd::geteuid().is_root() {
        format!(
            "nsvpn cannot ask the tunnel for its peers as this user: its socket is root's alone \
             (it holds the private key); `sudo nsvpn status {profile}` shows them"
        )
    } else {
        format!("cannot read the tunnel's peers: {e:#}")
    }
}

/// The DNS servers and search domains of the namespace's resolv.conf.
fn gather_dns(r: &mut Report) {
    if let Some((servers, search)) = dnsfiles::read_resolv_conf(&r.namespace) {
        r.dns = Some(DnsReport { servers, search });
    }
}

/// The report of `name`, whose profile file loaded as `loaded`. A file that
/// exists but does not load is a problem, and makes a profile that is down
/// "invalid", as `list` has it.
fn report(dir: &Path, name: &str, loaded: &Result<Profile>, procs: &SharedProcs) -> Report {
    let mut r = gather(name, loaded.as_ref().ok(), procs);
    if let Err(e) = loaded
        && profile::exists(dir, name)
    {
        if r.state == "down" {
            r.state = state_word(&Health::Down, false).into();
        }
        r.problems.push(format!(
            "{e:#}; `nsvpn up {name}` refuses it until that is fixed"
        ));
    }
    r
}

fn is_link_local_v6(a: std::net::IpAddr) -> bool {
    matches!(a, std::net::IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

fn ago(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The text form of a report. `now` is seconds since the epoch.
pub fn render(r: &Report, now: u64) -> String {
    let mut s = render_header(r);
    if r.state == "down" && r.problems.is_empty() {
        return s;
    }
    if r.state == "invalid" {
        render_problems(&mut s, r);
        return s;
    }
    render_client(&mut s, r, now);
    render_tunnel(&mut s, r, now);
    render_interfaces(&mut s, r);
    render_addresses(&mut s, r);
    render_routes(&mut s, r);
    render_dns(&mut s, r);
    render_peers(&mut s, r, now);
    render_ipsec(&mut s, r);
    render_processes(&mut s, r);
    render_split(&mut s, r);
    render_forwards(&mut s, r);
    render_parts(&mut s, r);
    render_problems(&mut s, r);
    s
}

/// One `key  value` line of the text form.
fn kv(s: &mut String, k: &str, v: String) {
    s.push_str(&format!("  {k:<15}{v}\n"));
}

/// The first line: the profile, its description and its state.
fn render_header(r: &Report) -> String {
    let desc = r
        .description
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    format!("profile {}{desc}: {}\n", r.profile, r.state)
}

/// The VPN's kind and implementation, its process, and since when it is up.
fn render_client(s: &mut String, r: &Report, now: u64) {
    if let Some(k) = &r.kind {
        let imp = r
            .implementation
            .map(|i| format!(", {i}"))
            .unwrap_or_default();
        kv(s, "vpn", format!("{k}{imp}"));
    }
    if let Some(pid) = r.pid {
        let prog = r.client.as_deref().unwrap_or("client");
        kv(s, "process", format!("{prog}, pid {pid}"));
    }
    match (r.connected_for, r.since) {
        (Some(c), _) => kv(s, "connected for", idle::human(c)),
        (None, Some(t)) => kv(s, "up since", ago(now, t)),
        (None, None) => {}
    }
    if let Some(i) = &r.idle {
        let timeout = idle::compact(i.timeout);
        let line = match &i.in_use {
            Some(by) => {
                format!("no, in use: {by}; goes down once unused for {timeout} (idle_timeout)")
            }
            None => format!(
                "for {}; goes down in {} (idle_timeout {timeout})",
                idle::human(i.idle_for),
                idle::human(i.goes_down_in)
            ),
        };
        kv(s, "idle", line);
    }
}

/// What a client-driven tunnel last reported, and the device's counters.
fn render_tunnel(s: &mut String, r: &Report, now: u64) {
    if let Some(t) = &r.tunnel {
        let state = match (t.connected, t.reconnecting_since) {
            (true, _) => "connected".to_string(),
            (false, Some(since)) => format!("reconnecting since {}", ago(now, since)),
            (false, None) => "not connected".to_string(),
        };
        kv(
            s,
            "tunnel",
            format!(
                "{state} (last event: {} {}; connected {} time{})",
                t.last_event,
                ago(now, t.last_event_at),
                t.connects,
                if t.connects == 1 { "" } else { "s" }
            ),
        );
    }
    if let Some(t) = r.traffic {
        kv(
            s,
            "transfer",
            format!("{} received, {} sent", bytes(t.rx_bytes), bytes(t.tx_bytes)),
        );
    }
}

/// The namespace, the interfaces' names and the veth's addresses.
fn render_interfaces(s: &mut String, r: &Report) {
    kv(s, "namespace", r.namespace.clone());
    kv(
        s,
        "interfaces",
        format!(
            "tunnel {}, veth {} (inside) / {} (host)",
            r.interfaces.tunnel, r.interfaces.namespace_veth, r.interfaces.host_veth
        ),
    );
    if let Some(v) = &r.veth {
        kv(
            s,
            "veth",
            format!("{} inside, host at {} ({})", v.namespace, v.host, v.subnet),
        );
    }
}

/// The addresses inside, on one line.
fn render_addresses(s: &mut String, r: &Report) {
    if !r.addresses.is_empty() {
        let list: Vec<String> = r
            .addresses
            .iter()
            .map(|a| format!("{} {}", a.interface, a.address))
            .collect();
        kv(s, "addresses", list.join(", "));
    }
}

/// The routes inside, one per line.
fn render_routes(s: &mut String, r: &Report) {
    if !r.routes.is_empty() {
        s.push_str("  routes\n");
        for rt in &r.routes {
            let dev = rt
                .interface
                .as_ref()
                .map(|d| format!(" dev {d}"))
                .unwrap_or_default();
            let via = rt
                .gateway
                .as_ref()
                .map(|g| format!(" via {g}"))
                .unwrap_or_default();
            let kill = if rt.unreachable { " unreachable" } else { "" };
            s.push_str(&format!("    {}{via}{dev}{kill}\n", rt.destination));
        }
    }
}

/// The DNS servers and search domains inside.
fn render_dns(s: &mut String, r: &Report) {
    if let Some(d) = &r.dns {
        let servers = if d.servers.is_empty() {
            "none".to_string()
        } else {
            d.servers.join(", ")
        };
        let search = if d.search.is_empty() {
            String::new()
        } else {
            format!("; search {}", d.search.join(" "))
        };
        kv(s, "dns", format!("{servers}{search}"));
    }
}

/// Each WireGuard peer: endpoint, last handshake, transfer, allowed IPs.
fn render_peers(s: &mut String, r: &Report, now: u64) {
    for p in &r.peers {
        s.push_str(&format!("  peer {}\n", p.public_key));
        if let Some(e) = &p.endpoint {
            s.push_str(&format!("    endpoint       {e}\n"));
        }
        let hs = p
            .last_handshake
            .map(|t| ago(now, t))
            .unwrap_or_else(|| "never".into());
        s.push_str(&format!("    handshake      {hs}\n"));
        s.push_str(&format!(
            "    transfer       {} received, {} sent\n",
            bytes(p.rx_bytes),
            bytes(p.tx_bytes)
        ));
        if !p.allowed_ips.is_empty() {
            s.push_str(&format!(
                "    allowed ips    {}\n",
                p.allowed_ips.join(", ")
            ));
        }
    }
}

/// Seconds as "12 s", "3 min", "2 h".
fn span(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// An IPsec profile's SA: the IKE_SA, the CHILD_SA, the virtual IP.
fn render_ipsec(s: &mut String, r: &Report) {
    let Some(sa) = &r.ipsec else {
        return;
    };
    let since = sa
        .established
        .map(|t| format!(" for {}", span(t)))
        .unwrap_or_default();
    kv(
        s,
        "ike sa",
        format!(
            "{} with {} ({}){since}, {}",
            sa.ike_state, sa.remote_host, sa.remote_id, sa.ike_proposal
        ),
    );
    match &sa.child {
        Some(c) => {
            let installed = c
                .installed
                .map(|t| format!(" for {}", span(t)))
                .unwrap_or_default();
            let rekey = c
                .rekey_in
                .map(|t| format!(", rekeyed in {}", span(t)))
                .unwrap_or_default();
            kv(
                s,
                "child sa",
                format!(
                    "#{} {}{installed}{rekey}, {}",
                    c.id, c.state, c.esp_proposal
                ),
            );
            kv(
                s,
                "",
                format!("{} === {}", c.local_ts.join(", "), c.remote_ts.join(", ")),
            );
            kv(
                s,
                "",
                format!(
                    "{} in ({} packets), {} out ({} packets)",
                    bytes(c.bytes_in),
                    c.packets_in,
                    bytes(c.bytes_out),
                    c.packets_out
                ),
            );
        }
        None => kv(s, "child sa", "none".into()),
    }
    if !sa.vips.is_empty() {
        kv(s, "virtual ip", sa.vips.join(", "));
    }
}

/// The processes inside, one per line, or "none".
fn render_processes(s: &mut String, r: &Report) {
    if r.processes.is_empty() {
        kv(s, "processes", "none".into());
    } else {
        s.push_str("  processes\n");
        for p in &r.processes {
            s.push_str(&format!("    {:>7}  {}\n", p.pid, p.command));
        }
    }
}

/// A part's line: what it is, and its state.
fn part_line(p: &Option<PartReport>) -> String {
    match p {
        Some(p) => format!("{}: {}", p.what, p.state),
        None => "not made".into(),
    }
}

/// A split profile: what leaves through the host, which names go where,
/// and the helpers that do it.
fn render_split(s: &mut String, r: &Report) {
    let Some(sp) = &r.split else {
        return;
    };
    let mut what = vec![if sp.internet {
        "internet on (what the VPN does not route leaves through the host)".to_string()
    } else {
        "internet off".to_string()
    }];
    if !sp.direct.is_empty() {
        what.push(format!("direct {}", sp.direct.join(", ")));
    }
    kv(s, "split", what.join("; "));
    let dns = match &sp.dns {
        Some(d) => {
            let to = if d.vpn_servers.is_empty() {
                "no server (they do not resolve)".to_string()
            } else {
                format!("{} (the VPN's)", d.vpn_servers.join(", "))
            };
            format!(
                "{} -> {to}; other names -> {}",
                d.domains.join(" "),
                d.other_names
            )
        }
        None => "not split: every name goes to the VPN's servers".into(),
    };
    kv(s, "split dns", dns);
    kv(s, "stack", part_line(&sp.stack));
    if sp.dns.is_some() {
        kv(s, "resolver", part_line(&sp.resolver));
    }
}

/// The kept forwards, and the process that serves them.
fn render_forwards(s: &mut String, r: &Report) {
    let Some(f) = &r.forwards else {
        return;
    };
    let ports: Vec<String> = f
        .ports
        .iter()
        .map(|p| format!("{} -> {}", p.listen, p.target))
        .collect();
    kv(
        s,
        "forwards",
        format!("{} ({})", ports.join(", "), part_line(&f.part)),
    );
}

/// Each part of the runtime and its state, on one line (what each part is
/// shows on the lines above; `--json` has it too).
fn render_parts(s: &mut String, r: &Report) {
    if !r.parts.is_empty() {
        let list: Vec<String> = r
            .parts
            .iter()
            .map(|p| format!("{} {}", p.name, p.state))
            .collect();
        kv(s, "parts", list.join(", "));
    }
}

/// One line per problem.
fn render_problems(s: &mut String, r: &Report) {
    for p in &r.problems {
        s.push_str(&format!("  problem: {p}\n"));
    }
}

pub fn run(caller: &Caller, dir: &Path, name: Option<&str>, json: bool) -> Result<()> {
    let procs = SharedProcs::new(Procs::read);
    let reports: Vec<Report> = match name {
        Some(n) => {
            names::validate_profile_name(n)?;
            profile::require_known(dir, n, || teardown::any_trace(&Names::for_profile(n)))?;
            let p = if caller.mode == Mode::FileCaps {
                let p = Profile::load(dir, n)?;
                caller.check_access(&p, Action::Status)?;
                Ok(p)
            } else {
                Profile::load(dir, n)
            };
            vec![report(dir, n, &p, &procs)]
        }
        None => {
            let mut all: Vec<String> = profile::list_names(dir).unwrap_or_default();
            for st in State::all() {
                if !all.contains(&st.profile) {
                    all.push(st.profile);
                }
            }
            all.sort();
            all.iter()
                .map(|n| (n, Profile::load(dir, n)))
                .filter(|(_, p)| caller.mode != Mode::FileCaps || caller.admitted(p.as_ref().ok()))
                .map(|(n, p)| report(dir, n, &p, &procs))
                .collect()
        }
    };
    if json {
        let out = if name.is_some() {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(&reports)?
        };
        println!("{out}");
    } else if reports.is_empty() {
        println!("no profiles in {}", dir.display());
    } else {
        let now = now_unix();
        let text: Vec<String> = reports.iter().map(|r| render(r, now)).collect();
        print!("{}", text.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = base_report("acme", None);
        r.state = "up".into();
        r.description = Some("ACME customer network".into());
        r.kind = Some("wireguard".into());
        r.veth = Some(VethReport {
            subnet: "169.254.109.200/30".into(),
            host: "169.254.109.201".into(),
            namespace: "169.254.109.202".into(),
        });
        r.implementation = Some(Implementation::Userspace);
        r.client = Some("wireguard-go".into());
        r.pid = Some(4242);
        r.since = Some(1_700_000_000 - 304);
        r.connected_for = Some(300);
        r.addresses = vec![
            AddressReport {
                interface: "nsvn-acme".into(),
                address: "169.254.109.202/30".into(),
            },
            AddressReport {
                interface: "nsvt-acme".into(),
                address: "10.99.0.2/32".into(),
            },
        ];
        r.routes = vec![
            RouteReport {
                destination: "10.20.0.0/16".into(),
                interface: Some("nsvt-acme".into()),
                gateway: None,
                unreachable: false,
            },
            RouteReport {
                destination: "169.254.109.200/30".into(),
                interface: Some("nsvn-acme".into()),
                gateway: None,
                unreachable: false,
            },
        ];
        r.dns = Some(DnsReport {
            servers: vec!["10.20.0.53".into()],
            search: vec!["acme.internal".into()],
        });
        r.peers = vec![PeerStatus {
            public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=".into(),
            endpoint: Some("203.0.113.2:51820".into()),
            last_handshake: Some(1_700_000_000 - 42),
            rx_bytes: 123_456,
            tx_bytes: 789,
            allowed_ips: vec!["10.20.0.0/16".into()],
        }];
        r.processes = vec![Process {
            pid: 777,
            command: "psql -h db.internal".into(),
        }];
        let part = |name, what: &str, state| PartReport {
            name,
            what: what.into(),
            state,
        };
        r.parts = vec![
            part("namespace", "nsvpn-acme", "ok"),
            part("veth", "nsvh-acme <-> nsvn-acme", "ok"),
            part("tunnel", "nsvt-acme, wireguard-go pid 4242", "ok"),
        ];
        r
    }

    #[test]
    fn text_up() {
        insta::assert_snapshot!(render(&sample(), 1_700_000_000));
    }

    #[test]
    fn text_down_and_broken() {
        let down = base_report("acme", None);
        let mut broken = sample();
        broken.state = "broken".into();
        broken.connected_for = None;
        broken.peers.clear();
        broken.processes.clear();
        broken.parts[2].state = "broken";
        broken.problems.push("wireguard-go (pid 4242) is not running: the tunnel is gone and the namespace is sealed; run `nsvpn down acme` then `nsvpn up acme`".into());
        insta::assert_snapshot!(format!(
            "{}\n{}",
            render(&down, 0),
            render(&broken, 1_700_000_000)
        ));
    }

    #[test]
    fn text_openvpn() {
        let mut r = sample();
        r.kind = Some("openvpn".into());
        r.implementation = None;
        r.client = Some("openvpn".into());
        r.peers.clear();
        r.addresses[1].address = "10.8.0.2/24".into();
        r.tunnel = Some(TunnelReport {
            connected: true,
            last_event: "restart".into(),
            last_event_at: 1_700_000_000 - 30,
            connects: 2,
            reconnecting_since: None,
            last_error: None,
        });
        r.traffic = Some(Traffic {
            rx_bytes: 5_000_000,
            tx_bytes: 42_000,
        });
        insta::assert_snapshot!(render(&r, 1_700_000_000));
    }

    fn ipsec_sample() -> Report {
        use crate::backend::ipsec::ChildSa;
        let mut r = sample();
        r.kind = Some("ipsec".into());
        r.implementation = None;
        r.client = Some("charon".into());
        r.peers.clear();
        r.addresses[1].address = "10.7.0.1/32".into();
        r.ipsec = Some(IpsecSa {
            ike_state: "ESTABLISHED".into(),
            remote_host: "203.0.113.18".into(),
            remote_id: "echo.lab".into(),
            established: Some(310),
            ike_proposal: "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072".into(),
            vips: vec!["10.7.0.1".into()],
            child: Some(ChildSa {
                id: 7,
                state: "INSTALLED".into(),
                esp_proposal: "AES_CBC-128/HMAC_SHA2_256_128".into(),
                local_ts: vec!["10.7.0.1/32".into()],
                remote_ts: vec!["10.20.0.0/16".into()],
                bytes_in: 5_000_000,
                bytes_out: 42_000,
                packets_in: 3_500,
                packets_out: 600,
                installed: Some(40),
                rekey_in: Some(3_100),
            }),
        });
        r
    }

    #[test]
    fn text_and_json_ipsec() {
        let r = ipsec_sample();
        insta::assert_snapshot!(render(&r, 1_700_000_000));
        insta::assert_json_snapshot!("ipsec_json", r.ipsec);
        // A gateway that deleted the SA: the IKE_SA without a CHILD_SA.
        let mut lost = ipsec_sample();
        if let Some(sa) = &mut lost.ipsec {
            sa.child = None;
            sa.ike_state = "CONNECTING".into();
            sa.established = None;
        }
        let text = render(&lost, 1_700_000_000);
        assert!(text.contains("  child sa       none\n"), "{text}");
        assert!(
            text.contains("  ike sa         CONNECTING with 203.0.113.18 (echo.lab), AES"),
            "{text}"
        );
    }

    /// A profile whose file does not parse: `status` and `list` both say
    /// "invalid", and `status` names the file and where.
    #[test]
    fn status_and_list_agree_on_an_invalid_profile() {
        let dir = std::env::temp_dir().join(format!("nsvpn-invalid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let name = "nsvpn-unit-badtoml";
        std::fs::write(
            dir.join(format!("{name}.toml")),
            "[vpn\nkind = \"wireguard\"\n",
        )
        .unwrap();
        let r = report(
            &dir,
            name,
            &Profile::load(&dir, name),
            &SharedProcs::new(Procs::read),
        );
        std::fs::remove_dir_all(&dir).unwrap();

        // `list` has its word from the same function (its own test).
        assert_eq!(r.state, "invalid");
        assert_eq!(r.state, state_word(&Health::Down, false));
        let text = render(&r, 0).replace(&dir.display().to_string(), "DIR");
        insta::assert_snapshot!(text);
    }

    /// `status` reads the profile's own file only, never the files it
    /// names (they may be root's alone, and the caller a user `[access]`
    /// admits): a profile whose wg-quick file is missing is just down, and
    /// `up` is what refuses it, naming the file and the field.
    #[test]
    fn a_profile_whose_config_is_missing_is_down_and_up_refuses_it() {
        let dir = std::env::temp_dir().join(format!("nsvpn-nocfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let name = "nsvpn-unit-nocfg";
        std::fs::write(
            dir.join(format!("{name}.toml")),
            "[vpn]\nkind = \"wireguard\"\nconfig = \"missing.conf\"\n",
        )
        .unwrap();
        let loaded = Profile::load(&dir, name);
        let r = report(&dir, name, &loaded, &SharedProcs::new(Procs::read));
        let up = loaded.as_ref().map(crate::lifecycle::check);
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(r.state, "down");
        assert_eq!(render(&r, 0), format!("profile {name}: down\n"));
        let err =
            format!("{:#}", up.unwrap().unwrap_err()).replace(&dir.display().to_string(), "DIR");
        assert_eq!(
            err,
            format!(
                "profile \"{name}\" (DIR/{name}.toml): field `vpn.config`: DIR/missing.conf: \
                 No such file or directory (os error 2)"
            )
        );
    }

    #[test]
    fn text_openvpn_reconnecting() {
        let mut r = sample();
        r.kind = Some("openvpn".into());
        r.implementation = None;
        r.client = Some("openvpn".into());
        r.peers.clear();
        r.state = "reconnecting".into();
        r.tunnel = Some(TunnelReport {
            connected: false,
            last_event: "connect".into(),
            last_event_at: 1_700_000_000 - 300,
            connects: 1,
            reconnecting_since: Some(1_700_000_000 - 19),
            last_error: Some("server unreachable: the connection was refused".into()),
        });
        r.problems.push(
            crate::backend::Reconnect {
                since: 1_700_000_000 - 19,
                last_error: Some("server unreachable: the connection was refused".into()),
            }
            .describe(1_700_000_000),
        );
        let text = render(&r, 1_700_000_000);
        assert!(
            text.contains("tunnel         reconnecting since 19 s ago"),
            "{text}"
        );
        insta::assert_snapshot!(text);
        insta::assert_json_snapshot!("reconnecting_json", r.tunnel);
    }

    #[test]
    fn peers_a_user_may_not_ask_for_are_no_fault_of_the_profile() {
        let denied =
            anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
                .context("cannot reach wireguard-go at /var/run/wireguard/nsvt-acme.sock");
        let other = anyhow::anyhow!("wireguard-go sent a reply that is not text");
        assert_eq!(
            peers_problem(&other, "acme"),
            "cannot read the tunnel's peers: wireguard-go sent a reply that is not text"
        );
        let said = peers_problem(&denied, "acme");
        if nix::unistd::geteuid().is_root() {
            assert!(
                said.starts_with("cannot read the tunnel's peers: cannot reach wireguard-go"),
                "{said}"
            );
        } else {
            assert!(
                said.ends_with("`sudo nsvpn status acme` shows them"),
                "{said}"
            );
        }
    }

    #[test]
    fn json() {
        insta::assert_json_snapshot!(sample());
    }

    /// A split profile with kept forwards: a sample of each state the
    /// helpers can be in.
    fn split_sample(resolver_runs: bool) -> Report {
        let mut r = sample();
        let part = |name, what: &str, state| PartReport {
            name,
            what: what.into(),
            state,
        };
        r.parts
            .push(part("stack", "slirp4netns pid 4300, nsvs0", "ok"));
        r.parts.push(if resolver_runs {
            part("resolver", "dnsmasq pid 4301, 127.0.0.1", "ok")
        } else {
            part("resolver", "dnsmasq, not running", "degraded")
        });
        r.parts.push(part("forwards", "nsvpn pid 4302", "ok"));
        r.split = Some(SplitReport {
            internet: true,
            direct: vec!["192.168.1.0/24".into()],
            dns: Some(SplitDnsReport {
                domains: vec!["acme.internal".into(), "acme.example".into()],
                vpn_servers: vec!["10.20.0.53".into()],
                other_names: "the host's resolver, through the stack's 169.254.250.3".into(),
            }),
            stack: Some(r.parts[3].clone()),
            resolver: Some(r.parts[4].clone()),
        });
        r.forwards = Some(ForwardsReport {
            ports: vec![
                ForwardReport {
                    listen: "127.0.0.1:15432".into(),
                    target: "db.acme.internal:5432".into(),
                },
                ForwardReport {
                    listen: "[::1]:8443".into(),
                    target: "10.20.1.8:443".into(),
                },
            ],
            part: Some(r.parts[5].clone()),
        });
        r
    }

    #[test]
    fn text_split() {
        let mut direct_only = sample();
        direct_only.split = Some(SplitReport {
            internet: false,
            direct: vec!["192.168.1.0/24".into(), "10.20.7.9/32".into()],
            dns: None,
            stack: Some(PartReport {
                name: "stack",
                what: "slirp4netns, not running".into(),
                state: "degraded",
            }),
            resolver: None,
        });
        direct_only.parts.push(PartReport {
            name: "stack",
            what: "slirp4netns, not running".into(),
            state: "degraded",
        });
        insta::assert_snapshot!(format!(
            "{}\n{}\n{}",
            render(&split_sample(true), 1_700_000_000),
            render(&split_sample(false), 1_700_000_000),
            render(&direct_only, 1_700_000_000)
        ));
    }

    /// A profile with an `idle_timeout`: in use, idle, and about to go down.
    fn idle_samples() -> [Report; 3] {
        let timeout = std::time::Duration::from_secs(900);
        let now = 1_700_000_000_000;
        let record = |ago: u64, forward_connections| idle::Record {
            last_used_ms: now - ago * 1000,
            by: String::new(),
            forward_connections,
        };
        let mut in_use = sample();
        in_use.idle = Some(idle::judge(timeout, &record(600, 0), 1, now));
        let mut forwarding = sample();
        forwarding.processes.clear();
        forwarding.idle = Some(idle::judge(timeout, &record(10, 2), 0, now));
        let mut idle = sample();
        idle.processes.clear();
        idle.idle = Some(idle::judge(timeout, &record(130, 0), 0, now));
        [in_use, forwarding, idle]
    }

    #[test]
    fn text_idle() {
        let text: Vec<String> = idle_samples()
            .iter()
            .map(|r| render(r, 1_700_000_000))
            .collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn json_idle() {
        let [in_use, _, idle] = idle_samples();
        insta::assert_json_snapshot!("json_idle_in_use", in_use.idle);
        insta::assert_json_snapshot!(idle);
    }

    #[test]
    fn json_split() {
        insta::assert_json_snapshot!(split_sample(true));
    }
}
