//! IPsec/IKEv2 with strongSwan, the userspace path: one `charon` per
//! profile, on the host (IKE and ESP on the host's uplink), with the
//! `kernel-libipsec` plugin doing ESP in user space over a TUN device that
//! nsvpn moves into the profile's namespace, as wireguard-go's.
//!
//! What keeps charon off the host's own traffic (each verified, see README
//! "IPsec profiles"):
//! - its own `strongswan.conf` (fixed plugin list, no `updown`, no
//!   `resolvconf`), its own `/run` (a private mount namespace: charon's pid
//!   file is fixed), its own VICI socket, random IKE ports;
//! - kernel-libipsec must install a route for each SA and a virtual IP on
//!   the TUN: the virtual IP goes on the profile's own TUN, the routes into
//!   a routing table of the profile's own that only packets carrying the
//!   profile's firewall mark look up, which nothing on the host sets; the
//!   TUN's move into the namespace takes both with it;
//! - DNS from the configuration payload is written by the `resolve` plugin
//!   into charon's own `/run/resolv.conf`, which nsvpn reads.
//!
//! nsvpn drives charon over VICI ([`vici`]); it never parses `swanctl`.

pub mod vici;

use std::ffi::OsString;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use self::vici::{Client, Message};
use crate::backend::client;
use crate::backend::client::hook::TunnelRecord;
use crate::backend::vpn::{RawVpn, Vpn};
use crate::backend::{Connected, at, check_secret};
use crate::ipnet::IpNet;
use crate::names::{Names, fnv1a};
use crate::netlink::Netlink;
use crate::profile::{Profile, Source};
use crate::state::State;
use crate::tunnel::{TunAddr, TunnelSetup};
use crate::{paths, signals, util, vlog};

pub const PROGRAM: &str = "charon";

/// Where Debian (and Fedora) install charon: the only programs nsvpn runs
/// for an IPsec profile.
const CHARON: &[&str] = &["/usr/lib/ipsec/charon", "/usr/libexec/ipsec/charon"];

/// The plugins charon loads, and nothing else (`load_modular = no`): no
/// `updown` (scripts), no `stroke`, no `resolvconf` program, no XFRM.
const PLUGINS: &str = "random nonce kdf aes sha1 sha2 hmac gmp pem pkcs1 x509 pubkey \
                       kernel-libipsec kernel-netlink socket-default vici resolve";

/// The name of the connection and its child in charon.
const CONN: &str = "nsvpn";

/// The `[vpn]` fields this kind takes.
pub const FIELDS: &[&str] = &["server", "local_id", "remote_id", "psk_file"];

/// `[vpn]` with kind = "ipsec": the gateway, the identities, the key.
pub(crate) fn settings(src: &Source, v: RawVpn) -> Result<Vpn> {
    let server = v
        .server
        .ok_or_else(|| src.field("vpn.server", "is missing: name the IKEv2 gateway".into()))?;
    if server.is_empty() || server.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(src.field(
            "vpn.server",
            format!("{server:?} is not a host name or address"),
        ));
    }
    let id = |field: &str, value: Option<String>| -> Result<Option<String>> {
        match value {
            Some(s) if s.is_empty() || s.chars().any(char::is_control) || s.len() > 255 => {
                Err(src.field(field, format!("{s:?} is not an IKE identity")))
            }
            other => Ok(other),
        }
    };
    let local_id = id("vpn.local_id", v.local_id)?.ok_or_else(|| {
        src.field(
            "vpn.local_id",
            "is missing: the identity the gateway knows you by (e.g. \"alice@example.com\")".into(),
        )
    })?;
    let remote_id = id("vpn.remote_id", v.remote_id)?;
    let psk_file = v
        .psk_file
        .ok_or_else(|| {
            src.field(
                "vpn.psk_file",
                "is missing: the file holding the pre-shared key (nsvpn's IPsec profiles \
                 authenticate with a pre-shared key only, so far)"
                    .into(),
            )
        })
        .and_then(|p| src.file("vpn.psk_file", &p))?;
    Ok(Vpn::IpSec {
        server,
        local_id,
        remote_id,
        psk_file,
    })
}

/// Everything read and checked before the machine is touched.
pub struct Prepared {
    pub charon: PathBuf,
    pub server: String,
    pub local_id: String,
    pub remote_id: String,
    psk: String,
    pub wait: Duration,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("server", &self.server)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("psk", &"(hidden)")
            .finish()
    }
}

fn find_charon() -> Result<PathBuf> {
    let charon = CHARON
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "strongSwan's charon is not installed: install it (Debian/Ubuntu: apt-get install \
                 strongswan-charon libcharon-extra-plugins)"
            )
        })?;
    let plugin = charon
        .with_file_name("plugins")
        .join("libstrongswan-kernel-libipsec.so");
    if !plugin.is_file() {
        bail!(
            "strongSwan's kernel-libipsec plugin is not installed ({}): install it (Debian/Ubuntu: \
             apt-get install libcharon-extra-plugins)",
            plugin.display()
        );
    }
    Ok(charon.to_path_buf())
}

pub fn prepare(
    profile: &Profile,
    server: &str,
    local_id: &str,
    remote_id: Option<&str>,
    psk_file: &Path,
    wait: Duration,
) -> Result<Prepared> {
    check_secret(profile, "vpn.psk_file", psk_file)?;
    let text = std::fs::read_to_string(psk_file)
        .with_context(|| format!("{} ({})", at(profile, "vpn.psk_file"), psk_file.display()))?;
    let psk = text.lines().next().unwrap_or("").to_string();
    if psk.is_empty() {
        bail!(
            "{} ({}): the file is empty: put the pre-shared key on its first line",
            at(profile, "vpn.psk_file"),
            psk_file.display()
        );
    }
    Ok(Prepared {
        charon: find_charon()?,
        server: server.to_string(),
        local_id: local_id.to_string(),
        remote_id: remote_id.unwrap_or(server).to_string(),
        psk,
        wait,
    })
}

/// The routing table (and firewall mark) of a profile's charon: the SAs'
/// routes go there, and only packets with that mark look it up.
pub fn table(profile: &str) -> u32 {
    0x6e76_0000 | (fnv1a(format!("ipsec:{profile}").as_bytes()) & 0xffff)
}

/// The priority of the (mark-only) rule charon adds for its table.
const RULE_PRIORITY: u32 = 32700;

/// charon's own directory: its `/run` (strongswan.conf, VICI socket, pid
/// file, log, resolv.conf), root's alone.
pub fn run_dir(profile: &str) -> PathBuf {
    paths::private_dir(profile).join("ipsec")
}

fn vici_socket(profile: &str) -> PathBuf {
    run_dir(profile).join("charon.vici")
}

/// charon's `strongswan.conf`. Paths are as charon sees them: its `/run`
/// is [`run_dir`]. `tun` is its TUN device once known: charon puts the
/// virtual IP there, never on the host's uplink.
pub fn render_conf(profile: &str, tun: Option<&str>) -> String {
    let table = table(profile);
    format!(
        "# Written by nsvpn for profile {profile}: the configuration of its own charon,\n\
         # which sees {} as /run. Regenerated on every `nsvpn up`.\n\
         charon {{\n\
         \x20 load_modular = no\n\
         \x20 load = {PLUGINS}\n\
         \x20 port = 0\n\
         \x20 port_nat_t = 0\n\
         \x20 retransmit_tries = 3\n\
         \x20 retransmit_timeout = 1.0\n\
         \x20 retransmit_base = 1.5\n\
         \x20 install_virtual_ip = yes\n\
         \x20 install_virtual_ip_on = {}\n\
         \x20 routing_table = {table}\n\
         \x20 routing_table_prio = {RULE_PRIORITY}\n\
         \x20 plugins {{\n\
         \x20   kernel-netlink {{\n\
         \x20     fwmark = {table:#x}\n\
         \x20   }}\n\
         \x20   vici {{\n\
         \x20     socket = unix:///run/charon.vici\n\
         \x20   }}\n\
         \x20   resolve {{\n\
         \x20     file = /run/resolv.conf\n\
         \x20   }}\n\
         \x20 }}\n\
         \x20 filelog {{\n\
         \x20   nsvpn {{\n\
         \x20     path = /run/charon.log\n\
         \x20     time_format = %T\n\
         \x20     default = 1\n\
         \x20   }}\n\
         \x20 }}\n\
         \x20 syslog {{\n\
         \x20   daemon {{\n\
         \x20     default = -1\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n",
        run_dir(profile).display(),
        tun.unwrap_or("nsvpn-tun-not-known-yet"),
    )
}

/// The connection nsvpn loads (`load-conn`): IKEv2 to the server, a
/// virtual IP asked for, whatever the gateway offers behind it, PSK both
/// ways, dead peer detection.
pub fn connection(p: &Prepared) -> Message {
    Message::new().section(
        CONN,
        Message::new()
            .kv("version", "2")
            .list("remote_addrs", [&p.server])
            .list("vips", ["0.0.0.0"])
            .list("proposals", ["default"])
            .kv("dpd_delay", "10s")
            .kv("unique", "replace")
            .section(
                "local-1",
                Message::new().kv("auth", "psk").kv("id", &p.local_id),
            )
            .section(
                "remote-1",
                Message::new().kv("auth", "psk").kv("id", &p.remote_id),
            )
            .section(
                "children",
                Message::new().section(
                    CONN,
                    Message::new()
                        .list("remote_ts", ["0.0.0.0/0"])
                        .list("esp_proposals", ["default"])
                        .kv("dpd_action", "restart"),
                ),
            ),
    )
}

/// The pre-shared key (`load-shared`), for exactly these two identities.
fn shared_key(p: &Prepared) -> Message {
    Message::new()
        .kv("id", "nsvpn-psk")
        .kv("type", "IKE")
        .kv("data", &p.psk)
        .list("owners", [&p.local_id, &p.remote_id])
}

/// Why an initiation failed, in plain words, from charon's answer and the
/// log lines it streamed while trying.
pub fn failure_reason(server: &str, errmsg: &str, log: &[String]) -> String {
    let has = |pats: &[&str]| {
        log.iter()
            .rev()
            .find(|l| pats.iter().any(|p| l.contains(p)))
    };
    if let Some(l) = has(&["AUTHENTICATION_FAILED", "authentication of", "EAP method"])
        .filter(|l| !l.contains("successful"))
    {
        return format!(
            "authentication failed: the gateway refused the pre-shared key or the identities \
             (check vpn.psk_file, vpn.local_id and vpn.remote_id) [{}]",
            l.trim()
        );
    }
    if let Some(l) = has(&["NO_PROPOSAL_CHOSEN", "no acceptable proposal"]) {
        return format!(
            "no proposal chosen: the gateway accepts none of the algorithms charon offers [{}]",
            l.trim()
        );
    }
    if let Some(l) = has(&["TS_UNACCEPTABLE"]) {
        return format!(
            "the gateway accepts none of the networks asked for [{}]",
            l.trim()
        );
    }
    if let Some(l) = has(&["giving up after", "unable to resolve", "no route"]) {
        return format!("peer unreachable: no answer from {server} [{}]", l.trim());
    }
    if errmsg.contains("timed out") || errmsg.contains("timeout") {
        return format!(
            "timed out: no tunnel from {server} in time (nsvpn up --timeout SECS waits longer)"
        );
    }
    format!("charon says: {errmsg}")
}

/// The TUN device charon opened (kernel-libipsec makes it at start-up), read
/// from `/proc/<pid>/fdinfo` (`iff:`).
fn charon_tun(pid: u32) -> Option<String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).ok()?;
    dir.flatten().find_map(|e| {
        let text = std::fs::read_to_string(e.path()).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("iff:"))
            .map(|n| n.trim().to_string())
    })
}

/// Waits, sleeping a little at a time, until `ready` says yes, charon
/// exits, the deadline passes, or a stop signal comes.
fn wait_for<T>(
    pid: u32,
    deadline: Instant,
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
) -> Result<T> {
    loop {
        signals::check()?;
        if let Some(t) = ready() {
            return Ok(t);
        }
        if !util::alive(pid) {
            bail!("charon exited before {what}");
        }
        if Instant::now() >= deadline {
            bail!("charon did not get to {what} in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The SA as charon lists it (`list-sas`): state, virtual IP, the
/// networks behind the gateway, traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaInfo {
    pub ike_state: String,
    pub remote_host: String,
    pub vips: Vec<String>,
    pub child_state: Option<String>,
    pub remote_ts: Vec<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Reads the IKE_SA named [`CONN`] out of `list-sa` events.
pub fn sa_info(events: &[Message]) -> Option<SaInfo> {
    let ike = events.iter().find_map(|e| e.sub(CONN))?;
    let mut info = SaInfo {
        ike_state: ike.str("state").unwrap_or_default(),
        remote_host: ike.str("remote-host").unwrap_or_default(),
        vips: ike.strs("local-vips"),
        ..Default::default()
    };
    if let Some((_, child)) = ike.sub("child-sas").and_then(|c| {
        c.sections()
            .find(|(_, c)| c.str("state").as_deref() == Some("INSTALLED"))
    }) {
        info.child_state = child.str("state");
        info.remote_ts = child.strs("remote-ts");
        let n = |k: &str| child.str(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        info.bytes_in = n("bytes-in");
        info.bytes_out = n("bytes-out");
    }
    Some(info)
}

fn list_sas(c: &mut Client) -> Result<Option<SaInfo>> {
    let mut events = Vec::new();
    c.call_streaming(
        "list-sas",
        Some("list-sa"),
        &Message::new().kv("ike", CONN).kv("noblock", "yes"),
        |m| events.push(m.clone()),
    )?;
    Ok(sa_info(&events))
}

/// The SA of a profile that is up, for `status`.
pub fn query(profile: &str) -> Result<Option<SaInfo>> {
    let mut c = Client::connect(&vici_socket(profile), Duration::from_secs(2))?;
    list_sas(&mut c)
}

/// The nameservers the resolve plugin wrote (`nameserver X   # by strongSwan`).
pub fn dns_servers(resolv: &str) -> Vec<IpAddr> {
    resolv
        .lines()
        .filter_map(|l| l.split('#').next()?.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// What the SA says the tunnel is: the virtual IP(s), the networks behind
/// the gateway, and DNS from the configuration payload.
pub fn setup_from_sa(device: &str, sa: &SaInfo, dns: Vec<IpAddr>) -> Result<TunnelSetup> {
    let mut s = TunnelSetup {
        device: device.to_string(),
        dns_servers: dns,
        ..Default::default()
    };
    for v in &sa.vips {
        let a: IpAddr = v
            .parse()
            .map_err(|_| anyhow!("charon reports the virtual IP {v:?}"))?;
        s.addresses.push(TunAddr {
            local: IpNet::host(a),
            peer: None,
        });
    }
    if s.addresses.is_empty() {
        bail!("the gateway assigned no virtual IP (nsvpn needs one: configure a pool on it)");
    }
    for t in &sa.remote_ts {
        // A traffic selector may carry a protocol and port ("10.20.0.0/16[tcp/80]").
        let net = t.split('[').next().unwrap_or(t);
        let net: IpNet = net
            .parse()
            .map_err(|e| anyhow!("charon reports the remote network {t:?}: {e}"))?;
        if !s.routes.contains(&net) {
            s.routes.push(net);
        }
    }
    Ok(s)
}

/// Starts the profile's charon, connects, and moves the tunnel into the
/// namespace `ns`.
pub fn connect(
    profile: &Profile,
    names: &Names,
    p: &Prepared,
    ns: BorrowedFd<'_>,
    st: &mut State,
) -> Result<Connected> {
    let t0 = Instant::now();
    let dir = run_dir(&profile.name);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let conf = dir.join("strongswan.conf");
    util::write_atomic(&conf, render_conf(&profile.name, None).as_bytes(), 0o600)?;
    let log = dir.join("charon.log");
    let out = paths::log_file(&profile.name, PROGRAM);
    // The tunnel's name as charon's only argument, which it ignores: it
    // tells nsvpn which charon is whose (see client::is_ours).
    let args: Vec<OsString> = vec![names.tunnel.clone().into()];
    let pid = client::spawn_private_run(
        &p.charon,
        &args,
        &dir,
        &[("STRONGSWAN_CONF", "/run/strongswan.conf")],
        &out,
    )?;
    st.pid = Some(pid);
    st.save()?;
    vlog!("charon started (pid {pid}), log in {}", log.display());
    let fail = |what: String| {
        anyhow!(
            "charon did not connect: {what}\nthe end of its log ({}, removed with the rest):\n{}",
            log.display(),
            util::tail(&log, 12)
        )
    };
    let start_deadline = Instant::now() + Duration::from_secs(10);
    let sock = vici_socket(&profile.name);
    wait_for(pid, start_deadline, "opening its VICI socket", || {
        sock.exists().then_some(())
    })
    .map_err(|e| fail(format!("{e:#}")))?;
    let tun = wait_for(pid, start_deadline, "opening its TUN device", || {
        charon_tun(pid)
    })
    .map_err(|e| fail(format!("{e:#}")))?;
    vlog!("charon's TUN device is {tun}");
    util::write_atomic(
        &conf,
        render_conf(&profile.name, Some(&tun)).as_bytes(),
        0o600,
    )?;
    let mut c = Client::connect(&sock, p.wait + Duration::from_secs(5))?;
    vici::check(
        "reload-settings",
        &c.call("reload-settings", &Message::new())?,
    )?;
    vici::check("load-shared", &c.call("load-shared", &shared_key(p))?)?;
    vici::check("load-conn", &c.call("load-conn", &connection(p))?)?;
    let own = t0.elapsed();

    let t1 = Instant::now();
    let mut lines = Vec::new();
    let res = c.call_streaming(
        "initiate",
        Some("control-log"),
        &Message::new()
            .kv("child", CONN)
            .kv("ike", CONN)
            .kv("timeout", p.wait.as_millis().to_string())
            .kv("init-limits", "no")
            .kv("loglevel", "1"),
        |m| {
            if let Some(l) = m.str("msg") {
                lines.push(l);
            }
        },
    );
    signals::check()?;
    let res = res.map_err(|e| fail(format!("{e:#}")))?;
    if res.str("success").as_deref() != Some("yes") {
        let errmsg = res.str("errmsg").unwrap_or_default();
        return Err(fail(failure_reason(&p.server, &errmsg, &lines)));
    }
    let waited = t1.elapsed();
    let sa = list_sas(&mut c)?
        .filter(|s| s.child_state.is_some())
        .ok_or_else(|| fail("charon reports no installed CHILD_SA after connecting".into()))?;
    let resolv = std::fs::read_to_string(dir.join("resolv.conf")).unwrap_or_default();
    let t2 = Instant::now();
    let mut setup = setup_from_sa(&names.tunnel, &sa, dns_servers(&resolv))?;
    let applied = util::block_on(async {
        let host = Netlink::here()?;
        let inner = Netlink::in_netns(ns.as_fd())?;
        let l = host
            .link_by_name(&tun)
            .await?
            .ok_or_else(|| anyhow!("charon's TUN device {tun} is gone from the host"))?;
        // The move takes the virtual IP and the SA routes (in the profile's
        // own table) off the host.
        host.move_to_netns(l.index, ns.as_fd()).await?;
        let l = inner
            .link_by_name(&tun)
            .await?
            .ok_or_else(|| anyhow!("charon's TUN device {tun} did not arrive in the namespace"))?;
        inner.rename(l.index, &names.tunnel).await?;
        crate::tunnel::configure(&inner, ns, l.index, names, &setup, &st.overrides).await
    })??;
    setup.device = names.tunnel.clone();
    let rec = TunnelRecord {
        event: "connect".into(),
        connected: true,
        at: util::now_unix(),
        connects: 1,
        device: names.tunnel.clone(),
        addresses: applied.addresses.clone(),
        mtu: applied.mtu,
        routes: applied.routes.iter().map(ToString::to_string).collect(),
        dns: applied.dns.clone(),
    };
    rec.save(&profile.name)?;
    Ok(Connected {
        what: format!(
            "IPsec, charon kernel-libipsec, virtual IP {}, routes {}",
            applied.addresses.join(", "),
            applied
                .routes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        own: own + t2.elapsed(),
        waited,
    })
}

/// Before charon is stopped: deletes the SAs over VICI, so that the
/// gateway sees the delete (charon's SIGTERM alone would not say goodbye).
pub fn disconnect(profile: &str) {
    let sock = vici_socket(profile);
    if !sock.exists() {
        return;
    }
    let done = Client::connect(&sock, Duration::from_secs(3)).and_then(|mut c| {
        c.call(
            "terminate",
            &Message::new()
                .kv("ike", CONN)
                .kv("timeout", "2000")
                .kv("force", "no"),
        )
    });
    match done {
        Ok(m) => vlog!(
            "charon: terminate: {}",
            m.str("success").unwrap_or_default()
        ),
        Err(e) => vlog!("charon: cannot terminate its SAs: {e:#}"),
    }
}

/// After charon is gone: the mark-only rule it adds for its table, if a
/// killed charon left it behind.
pub fn remove_rule(profile: &str, problems: &mut Vec<String>) {
    let table = table(profile);
    match util::block_on(async { Netlink::here()?.delete_rules_of_table(table).await }) {
        Ok(Ok(n)) if n > 0 => vlog!("removed {n} routing rule(s) of table {table} charon left"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) | Err(e) => problems.push(format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared() -> Prepared {
        Prepared {
            charon: "/usr/lib/ipsec/charon".into(),
            server: "vpn.example.com".into(),
            local_id: "alice@example.com".into(),
            remote_id: "vpn.example.com".into(),
            psk: "s3cret".into(),
            wait: Duration::from_secs(20),
        }
    }

    #[test]
    fn the_charon_configuration() {
        insta::assert_snapshot!(render_conf("echo", Some("ipsec0")));
        assert!(
            render_conf("echo", None).contains("install_virtual_ip_on = nsvpn-tun-not-known-yet")
        );
        // Each profile its own table, and only marked packets look it up.
        assert_ne!(table("echo"), table("foxtrot"));
        assert!(render_conf("echo", None).contains(&format!("fwmark = {:#x}", table("echo"))));
    }

    #[test]
    fn the_connection_and_key_loaded_over_vici() {
        insta::assert_snapshot!(connection(&prepared()).to_string());
        let k = shared_key(&prepared());
        assert_eq!(k.str("data").as_deref(), Some("s3cret"));
        assert_eq!(k.strs("owners"), ["alice@example.com", "vpn.example.com"]);
        // The key never shows in a debug print.
        assert!(!format!("{:?}", prepared()).contains("s3cret"));
    }

    #[test]
    fn failure_reasons() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            failure_reason(
                "203.0.113.18",
                "establishing CHILD_SA 'nsvpn' failed",
                &lines(&[
                    "parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]",
                    "received AUTHENTICATION_FAILED notify error",
                ]),
            ),
            failure_reason(
                "203.0.113.18",
                "establishing CHILD_SA 'nsvpn' failed",
                &lines(&["received NO_PROPOSAL_CHOSEN notify error"]),
            ),
            failure_reason(
                "203.0.113.99",
                "establishing CHILD_SA 'nsvpn' failed",
                &lines(&[
                    "retransmit 3 of request with message ID 0",
                    "giving up after 3 retransmits",
                ]),
            ),
            failure_reason("203.0.113.99", "initiating CHILD_SA 'nsvpn' timed out", &[]),
            failure_reason("203.0.113.99", "something else", &[]),
        ];
        insta::assert_snapshot!(cases.join("\n"));
        // A successful authentication line is no reason.
        assert!(
            !failure_reason(
                "gw",
                "x",
                &lines(&["authentication of 'gw.lab' with pre-shared key successful"])
            )
            .starts_with("authentication failed")
        );
    }

    fn sa_event() -> Message {
        Message::new().section(
            CONN,
            Message::new()
                .kv("state", "ESTABLISHED")
                .kv("remote-host", "203.0.113.18")
                .list("local-vips", ["10.7.0.1"])
                .section(
                    "child-sas",
                    Message::new().section(
                        "nsvpn-3",
                        Message::new()
                            .kv("state", "INSTALLED")
                            .kv("bytes-in", "168")
                            .kv("bytes-out", "336")
                            .list("local-ts", ["10.7.0.1/32"])
                            .list("remote-ts", ["10.20.0.0/16", "10.30.0.0/16[tcp/443]"]),
                    ),
                ),
        )
    }

    #[test]
    fn the_sa_and_the_tunnel_it_gives() {
        let sa = sa_info(&[Message::new().section("other", Message::new()), sa_event()]).unwrap();
        insta::assert_debug_snapshot!(sa);
        let setup = setup_from_sa("nsvt-x", &sa, dns_servers(
            "nameserver 10.20.0.53   # by strongSwan\n# nameserver 10.9.9.9\nnameserver bogus\n",
        ))
        .unwrap();
        insta::assert_debug_snapshot!(setup);
        let none = SaInfo {
            vips: vec![],
            ..sa.clone()
        };
        assert!(setup_from_sa("t", &none, vec![]).is_err());
        assert_eq!(sa_info(&[]), None);
    }
}
