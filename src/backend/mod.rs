//! The VPN kinds, one folder or file each with the same shape, and what
//! they share. Each kind answers the same questions: check its config
//! (`prepare`), connect, which program it runs, why it failed, and whether
//! its client is reconnecting. Nothing outside this folder matches on the
//! kind.

pub mod client;
pub mod ipsec;
pub mod openconnect;
pub mod openvpn;
pub mod vpn;
pub mod wireguard;

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::names::Names;
use crate::profile::Profile;
use crate::signals;
use crate::state::State;
use crate::trust;
pub use vpn::Vpn;

/// The kinds of VPN, as the state file records them (and the profile's
/// `vpn.kind` names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    WireGuard,
    OpenVpn,
    OpenConnect,
    #[serde(rename = "ipsec")]
    IpSec,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::WireGuard => "wireguard",
            Kind::OpenVpn => "openvpn",
            Kind::OpenConnect => "openconnect",
            Kind::IpSec => "ipsec",
        }
    }

    pub const ALL: [Kind; 4] = [
        Kind::WireGuard,
        Kind::OpenVpn,
        Kind::OpenConnect,
        Kind::IpSec,
    ];

    /// Whether a client of this kind can lose its connection and make it
    /// again by itself (and run nsvpn's hook then).
    pub fn reconnects(self) -> bool {
        matches!(self, Kind::OpenVpn | Kind::OpenConnect)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks the extra arguments a profile gives its client, if its kind
/// takes any (openconnect's `args`), as `up` would.
pub fn check_arguments(vpn: &Vpn) -> Result<(), Vec<String>> {
    match vpn {
        Vpn::OpenConnect { args, .. } => openconnect::check_args(args),
        Vpn::WireGuard { .. } | Vpn::OpenVpn { .. } | Vpn::IpSec(_) | Vpn::IpSecFile(_) => Ok(()),
    }
}

/// Everything read and checked before the machine is touched.
pub enum Prepared {
    WireGuard(wireguard::Prepared),
    /// openvpn or openconnect: a client that calls nsvpn's hook.
    Client(client::Launch),
    /// strongSwan's charon, driven over VICI.
    IpSec(ipsec::Prepared),
}

/// How long a VPN client gets to say goodbye and end before SIGKILL.
pub const CLIENT_GRACE: Duration = Duration::from_secs(5);

/// Asks a profile's VPN client to end; `ending` waits for it with the
/// other parts' processes. Each client says goodbye to its server on
/// SIGTERM (openvpn's exit notification, openconnect's logout; charon was
/// told over VICI in [`before_stop`]); openvpn's goodbye is then cut short
/// once it is sent (see [`openvpn::end`]). Without a state (a crash), the
/// kind is unknown and SIGTERM alone is sent: every client ends on it.
pub fn end_client(profile: &str, st: Option<&State>, pid: u32, ending: &mut crate::ending::Ending) {
    match st.map(|s| s.kind) {
        Some(Kind::OpenVpn) => openvpn::end(profile, pid, ending),
        // wireguard-go ends by itself once its device is gone, which the
        // veth's removal deletes with the veth pair (see `LINK_GROUP`).
        Some(Kind::WireGuard) => ending.later(pid, nix::sys::signal::Signal::SIGTERM, CLIENT_GRACE),
        _ => {
            ending.signal(pid, nix::sys::signal::Signal::SIGTERM, CLIENT_GRACE);
        }
    }
}

/// Before a profile's client is stopped, found by name (the state may be
/// gone): a kind that is told goodbye over a control socket is told now,
/// while its tunnel still works (charon deletes its SAs over VICI).
pub fn before_stop(profile: &str) {
    ipsec::disconnect(profile);
}

/// After a profile's client is stopped: what a kind leaves on the host
/// that outlives its client (a killed charon's routing rule; on the IPsec
/// kernel path its SAs and policies, found by the recorded `if_id`).
/// Without a state (a crash) every kind's leftovers are looked for.
pub fn after_stop(profile: &str, st: Option<&State>, problems: &mut Vec<String>) {
    if st.is_none_or(|s| s.kind == Kind::IpSec) {
        ipsec::remove_rule(profile, problems);
    }
    if let Some(if_id) = st.and_then(|s| s.backend.ipsec_if_id) {
        ipsec::remove_sas(if_id, problems);
    }
}

/// Checks that each file the profile names is there and a regular file,
/// the error naming the profile, its file and the field. Loading a profile
/// never does (a user who only enters a profile must not need to see its
/// files, which may be root's alone); `prepare` does, first, once nsvpn is
/// root or acts as root.
pub fn check_files(profile: &Profile) -> Result<()> {
    for (field, path) in profile.vpn.files() {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => bail!(
                "{}: {} is not a regular file",
                at(profile, field),
                path.display()
            ),
            Err(e) => bail!("{}: {}: {e}", at(profile, field), path.display()),
        }
    }
    Ok(())
}

/// Reads and checks everything the profile's kind needs, without touching
/// the machine. `wait` is how long `up` waits for the VPN. The only place
/// the files the profile names are read: `up` (and `exec`'s automatic `up`)
/// call it as root.
pub fn prepare(profile: &Profile, wait: Duration) -> Result<Prepared> {
    check_files(profile)?;
    Ok(match &profile.vpn {
        Vpn::WireGuard { config, userspace } => {
            Prepared::WireGuard(wireguard::prepare(profile, config, *userspace, wait)?)
        }
        Vpn::OpenVpn { config, auth_file } => Prepared::Client(openvpn::prepare(
            profile,
            config,
            auth_file.as_deref(),
            wait,
        )?),
        Vpn::OpenConnect {
            server,
            protocol,
            user,
            password_file,
            args,
        } => Prepared::Client(openconnect::prepare(
            profile,
            &openconnect::Settings {
                server,
                protocol: protocol.as_deref(),
                user: user.as_deref(),
                with_password: false,
                args,
            },
            password_file.as_deref(),
            wait,
        )?),
        Vpn::IpSec(s) => Prepared::IpSec(ipsec::prepare(profile, s, wait)?),
        Vpn::IpSecFile(s) => Prepared::IpSec(ipsec::prepare_file(profile, s, wait)?),
    })
}

impl Prepared {
    /// Records in the new state what the kind's later steps (the hook,
    /// `status`) need.
    pub fn seed(&self, st: &mut State) {
        if let Prepared::Client(c) = self {
            st.backend.openvpn = c.openvpn.clone();
        }
    }
}

/// What a kind records in the profile's state for its later steps (the
/// hook, `status`, another profile's `up`). Flattened into the state file,
/// whose fields these were before.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    /// WireGuard: kernel or wireguard-go.
    #[serde(default)]
    pub implementation: Option<wireguard::Implementation>,
    /// WireGuard: the UDP port its socket holds on the host (the file's
    /// ListenPort), so that another profile asking for it can be told
    /// whose it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// IPsec on the kernel path: the `if_id` of the profile's XFRM
    /// interface (and its CHILD_SA's reqid). None on the userspace path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec_if_id: Option<u32>,
    /// OpenVPN: what the hook needs of the `.ovpn` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openvpn: Option<openvpn::OvpnConfig>,
}

/// How a connection went: what it is, nsvpn's own time, the wait for the VPN.
pub struct Connected {
    /// "WireGuard, wireguard-go", "OpenVPN, tunnel 10.8.0.2/24 ...".
    pub what: String,
    pub own: Duration,
    pub waited: Duration,
}

/// Brings the tunnel up in the namespace `ns` (made, with its veth).
pub fn connect(
    profile: &Profile,
    names: &Names,
    prepared: &Prepared,
    ns: BorrowedFd<'_>,
    st: &mut State,
) -> Result<Connected> {
    match prepared {
        Prepared::WireGuard(p) => {
            let c = signals::block_on(wireguard::connect::connect(
                profile,
                names,
                &p.wg,
                &p.device,
                p.force_userspace,
                ns,
                p.wait,
                st,
            ))?;
            Ok(Connected {
                what: format!("WireGuard, {}", c.backend),
                own: c.plumbing,
                waited: c.handshake,
            })
        }
        Prepared::Client(c) => client::connect(profile, c, st),
        Prepared::IpSec(p) => ipsec::connect(profile, names, p, ns, st),
    }
}

/// The program behind a profile's tunnel, for messages.
pub fn program(st: &State) -> &'static str {
    match st.kind {
        Kind::OpenVpn => openvpn::PROGRAM,
        Kind::OpenConnect => openconnect::PROGRAM,
        Kind::WireGuard => wireguard::userspace::PROGRAM,
        Kind::IpSec => ipsec::PROGRAM,
    }
}

/// A client that lost its connection and is making it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    /// Seconds since the epoch.
    pub since: u64,
    /// The last error, in plain words, if the client said one.
    pub last_error: Option<String>,
}

impl Reconnect {
    pub fn describe(&self, now: u64) -> String {
        format!(
            "reconnecting since {} s ago{}",
            now.saturating_sub(self.since),
            self.last_error
                .as_ref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        )
    }
}

/// Whether the profile's VPN client is reconnecting: openvpn says so on its
/// management socket, openconnect through nsvpn's hook (`attempt-reconnect`),
/// an IPsec profile's supervisor in its record.
/// An error when the client cannot be asked (the socket is root's alone).
pub fn reconnecting(profile: &str, st: &State) -> Result<Option<Reconnect>, String> {
    match st.kind {
        Kind::OpenVpn => openvpn::reconnecting(profile),
        Kind::OpenConnect => Ok(openconnect::reconnecting(profile)),
        // On the kernel path charon re-establishes by itself; on the
        // userspace path the profile's supervisor does.
        Kind::IpSec if st.backend.ipsec_if_id.is_some() => ipsec::reconnecting_by_charon(profile),
        Kind::IpSec => ipsec::reconnecting(profile),
        Kind::WireGuard => Ok(None),
    }
}

/// Whether the profile has a supervisor (a part of its runtime) that makes
/// its tunnel again when the client cannot: an IPsec profile on the
/// userspace path (on the kernel path charon re-establishes by itself).
pub fn supervised(st: &State) -> bool {
    st.kind == Kind::IpSec && st.backend.ipsec_if_id.is_none()
}

/// Whether the profile's tunnel is lost although its client runs and its
/// device is there, and why (an IPsec profile whose charon has no SA any
/// more: on the userspace path it cannot make a new one; on the kernel
/// path, one re-established with another virtual IP).
pub fn lost(profile: &str, st: &State) -> Option<String> {
    match st.kind {
        Kind::IpSec => ipsec::lost(profile, st.backend.ipsec_if_id.is_some()),
        Kind::WireGuard | Kind::OpenVpn | Kind::OpenConnect => None,
    }
}

/// An IPsec profile's SA as its charon lists it, for `status`: None for
/// the other kinds, or when charon has none; an error when charon cannot
/// be asked.
pub fn ipsec_sa(profile: &str, st: &State) -> Result<Option<ipsec::SaInfo>, String> {
    if st.kind != Kind::IpSec {
        return Ok(None);
    }
    ipsec::query(profile).map_err(|e| {
        let denied = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
        });
        if denied {
            format!(
                "nsvpn cannot ask charon for its SA as this user: its socket is root's alone; \
                 `sudo nsvpn status {profile}` shows it"
            )
        } else {
            format!("cannot ask charon for its SA: {e:#}")
        }
    })
}

/// "profile "x" (path): field `f`" for error messages.
pub(crate) fn at(profile: &Profile, field: &str) -> String {
    format!(
        "profile {:?} ({}): field `{field}`",
        profile.name,
        profile.path.display()
    )
}

pub(crate) fn read_config(profile: &Profile, field: &str, path: &Path) -> Result<String> {
    trust::check(
        path,
        &at(profile, field),
        trust::Role::field(profile, field),
    )?;
    std::fs::read_to_string(path)
        .with_context(|| format!("{} ({})", at(profile, field), path.display()))
}

/// A file with keys or passwords: trusted like the profile, and warned
/// about when others can read it.
pub(crate) fn check_secret(profile: &Profile, field: &str, path: &Path) -> Result<()> {
    trust::check(
        path,
        &at(profile, field),
        trust::Role::field(profile, field),
    )?;
    trust::warn_if_exposed(path, &at(profile, field));
    Ok(())
}

pub(crate) fn find_client(program: &'static str) -> Result<PathBuf> {
    client::find_program(program).ok_or_else(|| {
        anyhow!("{program} is not installed: install it (Debian/Ubuntu: apt-get install {program})")
    })
}

pub(crate) fn hook_exe() -> Result<PathBuf> {
    std::env::current_exe()
        .context("cannot tell where the nsvpn binary is (for the VPN client's hook)")
}
