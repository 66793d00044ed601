//! Starting a client that runs nsvpn's hook (openvpn, openconnect) and
//! waiting for the hook to report its tunnel applied.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::hook::{HookListener, HookMessage};
use super::process::{self, Waited};
use crate::backend::Connected;
use crate::backend::openvpn::{self, OvpnConfig};
use crate::paths;
use crate::profile::Profile;
use crate::state::State;
use crate::util;
use crate::vlog;

/// A VPN client to start, with everything it needs.
pub struct Launch {
    pub program: &'static str,
    pub path: PathBuf,
    pub args: Vec<OsString>,
    pub stdin: Option<Vec<u8>>,
    /// What the client reads on descriptor 3 (openvpn's checked config).
    pub fd3: Option<OwnedFd>,
    /// How long to wait for the connection.
    pub wait: Duration,
    /// "OpenVPN", "OpenConnect".
    pub label: &'static str,
    /// Reads the client's log for why it failed, in plain words.
    pub failure_reason: fn(&str) -> Option<String>,
    pub openvpn: Option<OvpnConfig>,
}

/// Starts the VPN client and sleeps until its hook reports the tunnel
/// applied, the client exits, or the wait is over.
pub fn connect(profile: &Profile, c: &Launch, st: &mut State) -> Result<Connected> {
    let program = c.program;
    let listener = HookListener::bind(&profile.name)?;
    let log = paths::log_file(&profile.name, program);
    let t0 = Instant::now();
    let fd3 = c.fd3.as_ref().map(|f| f.as_fd());
    let pid = process::spawn(&c.path, &c.args, c.stdin.as_deref(), fd3, &log)?;
    st.pid = Some(pid);
    st.save()?;
    vlog!("{program} started (pid {pid}), log in {}", log.display());
    let failed = |what: String| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let reason = (c.failure_reason)(&text).unwrap_or_else(|| "its log does not say why".into());
        let servers = c
            .openvpn
            .as_ref()
            .map(|cfg| openvpn::servers_tried(cfg, &text))
            .unwrap_or_default();
        anyhow!(
            "{program} did not connect: {what}: {reason}{servers}\nthe end of its log ({}, removed with the rest):\n{}",
            log.display(),
            util::tail(&log, 12)
        )
    };
    match process::wait_ready(listener.fd(), pid, c.wait)? {
        Waited::Ready => match listener.recv() {
            Some(HookMessage::Connected { own_ms, summary }) => {
                let own = Duration::from_millis(own_ms);
                Ok(Connected {
                    what: format!("{}, {summary}", c.label),
                    own,
                    waited: t0.elapsed().saturating_sub(own),
                })
            }
            Some(HookMessage::Failed { error }) => Err(anyhow!(
                "nsvpn could not set up the tunnel {program} opened: {error}\nthe end of {program}'s log ({}):\n{}",
                log.display(),
                util::tail(&log, 12)
            )),
            None => bail!("nsvpn's hook sent a message nsvpn could not read"),
        },
        Waited::Exited => Err(failed(format!(
            "it exited after {:.1} s",
            t0.elapsed().as_secs_f64()
        ))),
        Waited::TimedOut => Err(failed(format!(
            "no connection after {:.1} s (nsvpn up --timeout SECS waits longer)",
            c.wait.as_secs_f64()
        ))),
    }
}

/// The last error in a client's log since it last connected, read by the
/// client's own `failure_reason`.
pub fn last_error(
    profile: &str,
    program: &str,
    failure_reason: fn(&str) -> Option<String>,
) -> Option<String> {
    let log = std::fs::read_to_string(paths::log_file(profile, program)).ok()?;
    let since = ["Initialization Sequence Completed", "nsvpn hook: "]
        .iter()
        .filter_map(|m| log.rfind(m))
        .max()
        .unwrap_or(0);
    failure_reason(&log[since..])
}
