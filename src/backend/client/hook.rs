//! nsvpn's hook, which openvpn runs as its `--up` script and openconnect as
//! its vpnc-script (as root, in the host namespace): it moves the client's
//! tunnel device into the profile's namespace, applies what the VPN
//! provides (or the profile's overrides), records it for `status`, and tells
//! the waiting `up` how it went, over a root-only socket.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::backend::{openconnect, openvpn};
use crate::dnsfiles::DnsConfig;
use crate::names;
use crate::paths;
use crate::state::State;
use crate::tunnel::TunnelSetup;

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

/// A cause of failure a client's log shows: the patterns of its lines, and
/// what it means, in plain words.
pub type LogReason = (&'static [&'static str], &'static str);

/// The first reason of `table` whose patterns some line of `log` has, as
/// "meaning [line]", with the last such line, `clean`ed.
pub fn log_reason(log: &str, table: &[LogReason], clean: fn(&str) -> String) -> Option<String> {
    table.iter().find_map(|(pats, meaning)| {
        last_log_line(log, pats).map(|l| format!("{meaning} [{}]", clean(l)))
    })
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

/// What the hook does for `kind`'s client: checks that it runs as root for
/// a profile nsvpn is bringing up, reads what the client says of its tunnel
/// (each kind its own environment), applies it and reports.
pub fn run(kind: &str, profile: &str, env: BTreeMap<String, String>) -> Result<()> {
    if !nix::unistd::getuid().is_root() || !nix::unistd::geteuid().is_root() {
        bail!(
            "`nsvpn hook` is run by openvpn or openconnect, as root, for a profile nsvpn is bringing up; it is not a command to run by hand"
        );
    }
    names::validate_profile_name(profile)?;
    let st = State::load(profile).ok_or_else(|| {
        anyhow!(
            "profile {profile} is not being brought up by nsvpn (no state in {})",
            paths::profile_dir(profile).display()
        )
    })?;
    if st.kind.name() != kind {
        bail!("profile {profile} is a {} profile, not {kind}", st.kind);
    }
    let t0 = Instant::now();
    let Some((setup, event)) = (match kind {
        "openvpn" => openvpn::hook_event(profile, &st, &env)?,
        "openconnect" => openconnect::hook_event(profile, &env)?,
        other => bail!("unknown hook kind {other:?}"),
    }) else {
        return Ok(());
    };
    apply(&st, &setup, event, t0)
}

fn apply(st: &State, setup: &TunnelSetup, event: &str, t0: Instant) -> Result<()> {
    let applied = crate::tunnel::apply(&st.names, setup, &st.overrides)?;
    let connects = TunnelRecord::load(&st.profile).map_or(0, |r| r.connects);
    let rec = TunnelRecord {
        event: event.to_string(),
        connected: true,
        at: crate::util::now_unix(),
        connects: connects + 1,
        device: setup.device.clone(),
        addresses: applied.addresses,
        mtu: applied.mtu,
        routes: applied.routes.iter().map(ToString::to_string).collect(),
        dns: applied.dns,
    };
    rec.save(&st.profile)?;
    let summary = format!(
        "tunnel {}{}",
        rec.addresses.join(", "),
        if rec.routes.iter().any(|r| r == "0.0.0.0/0") {
            ", all traffic".to_string()
        } else {
            format!(", routes {}", rec.routes.join(" "))
        }
    );
    eprintln!(
        "nsvpn hook: {event}: {} moved into {}: {summary}",
        setup.device, st.names.netns
    );
    notify(
        &st.profile,
        &HookMessage::Connected {
            own_ms: t0.elapsed().as_millis() as u64,
            summary,
        },
    );
    Ok(())
}
