//! A profile's `[vpn]` section: read by its `kind`, each kind taking its own
//! fields. The profile parser hands the section over; the kinds own what it
//! means.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use super::{Kind, ipsec, openconnect, openvpn, wireguard};
use crate::profile::Source;

/// `[vpn]` as written: every kind's fields, each optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVpn {
    kind: String,
    pub(crate) config: Option<String>,
    pub(crate) userspace: Option<bool>,
    pub(crate) server: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) password_file: Option<String>,
    pub(crate) args: Option<Vec<String>>,
    pub(crate) auth_file: Option<String>,
    pub(crate) local_id: Option<String>,
    pub(crate) remote_id: Option<String>,
    pub(crate) psk_file: Option<String>,
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) ca_file: Option<String>,
    pub(crate) proposals: Option<Vec<String>>,
    pub(crate) esp_proposals: Option<Vec<String>>,
    pub(crate) connection: Option<String>,
}

impl RawVpn {
    /// The fields set, besides `kind`, in the order they are checked.
    fn present(&self) -> Vec<&'static str> {
        [
            ("userspace", self.userspace.is_some()),
            ("config", self.config.is_some()),
            ("server", self.server.is_some()),
            ("protocol", self.protocol.is_some()),
            ("user", self.user.is_some()),
            ("password_file", self.password_file.is_some()),
            ("args", self.args.is_some()),
            ("auth_file", self.auth_file.is_some()),
            ("local_id", self.local_id.is_some()),
            ("remote_id", self.remote_id.is_some()),
            ("psk_file", self.psk_file.is_some()),
            ("cert_file", self.cert_file.is_some()),
            ("key_file", self.key_file.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("proposals", self.proposals.is_some()),
            ("esp_proposals", self.esp_proposals.is_some()),
            ("connection", self.connection.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect()
    }
}

/// The tunnel a profile asks for, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vpn {
    WireGuard {
        config: PathBuf,
        userspace: bool,
    },
    OpenVpn {
        config: PathBuf,
        auth_file: Option<PathBuf>,
    },
    OpenConnect {
        server: String,
        protocol: Option<String>,
        user: Option<String>,
        password_file: Option<PathBuf>,
        args: Vec<String>,
    },
    /// The gateway, the identities and how each side authenticates.
    IpSec(ipsec::Settings),
    /// A swanctl.conf-style connection file, and where its secrets are.
    IpSecFile(ipsec::swanctl::FileSettings),
}

/// The fields of `[vpn]` each kind takes (besides `kind`).
fn fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::WireGuard => wireguard::FIELDS,
        Kind::OpenVpn => openvpn::FIELDS,
        Kind::OpenConnect => openconnect::FIELDS,
        Kind::IpSec => ipsec::FIELDS,
    }
}

impl Vpn {
    pub fn kind(&self) -> Kind {
        match self {
            Vpn::WireGuard { .. } => Kind::WireGuard,
            Vpn::OpenVpn { .. } => Kind::OpenVpn,
            Vpn::OpenConnect { .. } => Kind::OpenConnect,
            Vpn::IpSec(_) | Vpn::IpSecFile(_) => Kind::IpSec,
        }
    }

    /// The files the profile names, by field (`vpn.config`, ...), in the
    /// order `up` checks them. Only `up` (as root) looks at them.
    pub fn files(&self) -> Vec<(&'static str, &Path)> {
        let mut out = Vec::new();
        match self {
            Vpn::WireGuard { config, .. } => out.push(("vpn.config", config.as_path())),
            Vpn::OpenVpn { config, auth_file } => {
                out.push(("vpn.config", config.as_path()));
                out.extend(auth_file.as_deref().map(|a| ("vpn.auth_file", a)));
            }
            Vpn::OpenConnect { password_file, .. } => {
                out.extend(password_file.as_deref().map(|p| ("vpn.password_file", p)));
            }
            Vpn::IpSec(s) => out.extend(s.files()),
            Vpn::IpSecFile(s) => out.extend(s.files()),
        }
        out
    }

    /// Reads `[vpn]`: its `kind`, then only that kind's fields.
    pub(crate) fn parse(src: &Source, v: RawVpn) -> Result<Vpn> {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == v.kind)
            .ok_or_else(|| {
                src.field(
                    "vpn.kind",
                    format!(
                        "{:?} is not a VPN kind: use \"wireguard\", \"openvpn\", \"openconnect\" or \"ipsec\"",
                        v.kind
                    ),
                )
            })?;
        for f in v.present() {
            if !fields(kind).contains(&f) {
                let takers: Vec<&str> = Kind::ALL
                    .into_iter()
                    .filter(|k| fields(*k).contains(&f))
                    .map(Kind::name)
                    .collect();
                return Err(src.field(
                    &format!("vpn.{f}"),
                    format!("is only for kind = \"{}\"", takers.join("\" or \"")),
                ));
            }
        }
        match kind {
            Kind::WireGuard => wireguard::settings(src, v),
            Kind::OpenVpn => openvpn::settings(src, v),
            Kind::OpenConnect => openconnect::settings(src, v),
            Kind::IpSec => ipsec::settings(src, v),
        }
    }
}
