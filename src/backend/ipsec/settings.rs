//! `[vpn]` with kind = "ipsec": the gateway, the identities, how each side
//! authenticates (a pre-shared key; a certificate; EAP with a user name and
//! password), and the algorithms offered. Read from the profile and checked
//! without looking at any file: `prepare` reads the files, as root.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::backend::vpn::{RawVpn, Vpn};
use crate::profile::Source;

/// The `[vpn]` fields this kind takes.
pub const FIELDS: &[&str] = &[
    "server",
    "local_id",
    "remote_id",
    "psk_file",
    "cert_file",
    "key_file",
    "ca_file",
    "user",
    "password_file",
    "proposals",
    "esp_proposals",
    "config",
    "connection",
    "userspace",
];

/// How nsvpn's side authenticates, and with it how the gateway does: with
/// the same pre-shared key, or with a certificate checked against
/// `ca_file` (for a certificate or EAP on nsvpn's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `psk_file`: both sides prove they know the key.
    Psk { psk_file: PathBuf },
    /// `cert_file` + `key_file`: a certificate and its private key.
    Cert {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
    /// `user` + `password_file`: EAP (the method the gateway asks for,
    /// among those charon has: MD5, MSCHAPv2 where installed).
    Eap {
        user: String,
        password_file: PathBuf,
    },
}

impl Auth {
    /// The word strongSwan uses for nsvpn's side (`auth = ...`).
    pub fn local(&self) -> &'static str {
        match self {
            Auth::Psk { .. } => "psk",
            Auth::Cert { .. } => "pubkey",
            Auth::Eap { .. } => "eap",
        }
    }

    /// The fields to check when the gateway refuses nsvpn's side.
    pub fn fields(&self) -> &'static str {
        match self {
            Auth::Psk { .. } => "vpn.psk_file, vpn.local_id and vpn.remote_id",
            Auth::Cert { .. } => "vpn.cert_file, vpn.key_file and vpn.local_id",
            Auth::Eap { .. } => "vpn.user and vpn.password_file",
        }
    }

    /// What nsvpn's side proves itself with, for messages.
    pub fn what(&self) -> &'static str {
        match self {
            Auth::Psk { .. } => "the pre-shared key",
            Auth::Cert { .. } => "the certificate",
            Auth::Eap { .. } => "the user name or password",
        }
    }
}

/// A profile's IPsec settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub server: String,
    /// nsvpn's IKE identity; required with a pre-shared key, else by
    /// default the certificate's subject or the EAP user.
    pub local_id: Option<String>,
    /// The gateway's identity; by default the server as written.
    pub remote_id: Option<String>,
    pub auth: Auth,
    /// The CA that signed the gateway's certificate (certificate and EAP).
    pub ca_file: Option<PathBuf>,
    /// IKE proposals (strongSwan's syntax), else strongSwan's defaults.
    pub proposals: Vec<String>,
    /// ESP proposals, else strongSwan's defaults.
    pub esp_proposals: Vec<String>,
    /// `userspace`: which path. None (left out): the kernel's (an XFRM
    /// interface) where the kernel has XFRM interfaces, else charon's
    /// kernel-libipsec; true: kernel-libipsec; false: the kernel's, or fail.
    pub userspace: Option<bool>,
}

impl Settings {
    /// The files the profile names, by field, in the order `up` checks them.
    pub fn files(&self) -> Vec<(&'static str, &Path)> {
        let mut out = Vec::new();
        match &self.auth {
            Auth::Psk { psk_file } => out.push(("vpn.psk_file", psk_file.as_path())),
            Auth::Cert {
                cert_file,
                key_file,
            } => {
                out.push(("vpn.cert_file", cert_file.as_path()));
                out.push(("vpn.key_file", key_file.as_path()));
            }
            Auth::Eap { password_file, .. } => {
                out.push(("vpn.password_file", password_file.as_path()))
            }
        }
        out.extend(self.ca_file.as_deref().map(|c| ("vpn.ca_file", c)));
        out
    }
}

const HOW: &str = "say how nsvpn authenticates: `psk_file` (a pre-shared key), `cert_file` and \
                   `key_file` (a certificate), or `user` and `password_file` (EAP)";

/// An IKE identity: text a gateway compares, no control characters.
fn identity(src: &Source, field: &str, value: Option<String>) -> Result<Option<String>> {
    match value {
        Some(s) if s.is_empty() || s.chars().any(char::is_control) || s.len() > 255 => {
            Err(src.field(field, format!("{s:?} is not an IKE identity")))
        }
        other => Ok(other),
    }
}

/// A list of proposals in strongSwan's syntax (`aes256-sha256-modp2048`):
/// algorithm keywords joined by `-`, nothing else.
fn proposals(src: &Source, field: &str, value: Option<Vec<String>>) -> Result<Vec<String>> {
    let Some(list) = value else {
        return Ok(Vec::new());
    };
    if list.is_empty() {
        return Err(src.field(
            field,
            "is empty: leave it out for strongSwan's defaults, or list proposals such as \
             \"aes256-sha256-modp2048\""
                .into(),
        ));
    }
    for (i, p) in list.iter().enumerate() {
        let word = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if p.len() > 200 || !p.split('-').all(word) {
            return Err(src.field(
                &format!("{field}[{i}]"),
                format!(
                    "{p:?} is not a proposal: algorithm keywords joined by '-', such as \
                     \"aes256-sha256-modp2048\""
                ),
            ));
        }
    }
    Ok(list)
}

/// `[vpn]` with kind = "ipsec".
pub(crate) fn settings(src: &Source, mut v: RawVpn) -> Result<Vpn> {
    // A swanctl.conf-style file says the rest (super::swanctl).
    if let Some(config) = v.config.take() {
        return super::swanctl::settings(src, v, config).map(Vpn::IpSecFile);
    }
    if v.connection.is_some() {
        return Err(src.field(
            "vpn.connection",
            "names a connection of a swanctl.conf file: it needs `config`".into(),
        ));
    }
    let server = v
        .server
        .ok_or_else(|| src.field("vpn.server", "is missing: name the IKEv2 gateway".into()))?;
    // A host name or an address: charon resolves it; nothing else belongs
    // there (no options, no spaces, no shell words).
    let host_char = |c: char| c.is_ascii_alphanumeric() || ".-_:[]".contains(c);
    if server.is_empty() || server.len() > 253 || !server.chars().all(host_char) {
        return Err(src.field(
            "vpn.server",
            format!("{server:?} is not a host name or address"),
        ));
    }
    if server.starts_with('-') {
        return Err(src.field(
            "vpn.server",
            format!("{server:?} is not a host name or address"),
        ));
    }
    let local_id = identity(src, "vpn.local_id", v.local_id)?;
    let remote_id = identity(src, "vpn.remote_id", v.remote_id)?;
    let file = |field: &str, p: Option<String>| p.map(|p| src.file(field, &p)).transpose();
    let psk_file = file("vpn.psk_file", v.psk_file)?;
    let cert_file = file("vpn.cert_file", v.cert_file)?;
    let key_file = file("vpn.key_file", v.key_file)?;
    let ca_file = file("vpn.ca_file", v.ca_file)?;
    let password_file = file("vpn.password_file", v.password_file)?;
    let user = identity(src, "vpn.user", v.user)?;
    // Exactly one way to authenticate, whole.
    let ways = [
        psk_file.is_some(),
        cert_file.is_some() || key_file.is_some(),
        user.is_some() || password_file.is_some(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        let second = if psk_file.is_some() && ways[1] {
            if cert_file.is_some() {
                "vpn.cert_file"
            } else {
                "vpn.key_file"
            }
        } else if user.is_some() {
            "vpn.user"
        } else {
            "vpn.password_file"
        };
        return Err(src.field(
            second,
            format!("a profile authenticates one way only: {HOW}, not two"),
        ));
    }
    let auth = match (psk_file, cert_file, key_file, user, password_file) {
        (Some(psk_file), ..) => Auth::Psk { psk_file },
        (None, Some(cert_file), Some(key_file), ..) => Auth::Cert {
            cert_file,
            key_file,
        },
        (None, Some(_), None, ..) => {
            return Err(src.field(
                "vpn.key_file",
                "is missing: the private key of `cert_file`".into(),
            ));
        }
        (None, None, Some(_), ..) => {
            return Err(src.field(
                "vpn.cert_file",
                "is missing: the certificate of `key_file`".into(),
            ));
        }
        (None, None, None, Some(user), Some(password_file)) => Auth::Eap {
            user,
            password_file,
        },
        (None, None, None, Some(_), None) => {
            return Err(src.field(
                "vpn.password_file",
                "is missing: the file holding the EAP password of `user`".into(),
            ));
        }
        (None, None, None, None, Some(_)) => {
            return Err(src.field(
                "vpn.user",
                "is missing: the EAP user name `password_file` is for".into(),
            ));
        }
        (None, None, None, None, None) => {
            return Err(src.field("vpn.psk_file", format!("is missing: {HOW}")));
        }
    };
    match (&auth, &ca_file) {
        (Auth::Psk { .. }, Some(_)) => {
            return Err(src.field(
                "vpn.ca_file",
                "is for a certificate or EAP: with `psk_file` the gateway proves itself with \
                 the same pre-shared key"
                    .into(),
            ));
        }
        (Auth::Cert { .. } | Auth::Eap { .. }, None) => {
            return Err(src.field(
                "vpn.ca_file",
                "is missing: the CA certificate that signed the gateway's certificate (the \
                 gateway proves itself with a certificate)"
                    .into(),
            ));
        }
        _ => {}
    }
    if local_id.is_none() && matches!(auth, Auth::Psk { .. }) {
        return Err(src.field(
            "vpn.local_id",
            "is missing: the identity the gateway knows you by (e.g. \"alice@example.com\")".into(),
        ));
    }
    Ok(Vpn::IpSec(Settings {
        server,
        local_id,
        remote_id,
        auth,
        ca_file,
        proposals: proposals(src, "vpn.proposals", v.proposals)?,
        esp_proposals: proposals(src, "vpn.esp_proposals", v.esp_proposals)?,
        userspace: v.userspace,
    }))
}
