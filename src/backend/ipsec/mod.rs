//! IPsec/IKEv2 with strongSwan: one `charon` per profile, on the host (IKE
//! and ESP on the host's uplink), on one of two paths ([`Datapath`]):
//!
//! - the kernel path: the kernel does ESP; nsvpn creates an XFRM interface
//!   with an `if_id` of the profile's own and moves it into the namespace;
//!   charon (kernel-netlink, no route, no virtual IP installed) binds its
//!   SAs and policies to that `if_id`, so that they match only what is
//!   routed into that interface, never the host's own traffic;
//! - the userspace path: the `kernel-libipsec` plugin does ESP in user
//!   space over a TUN device that nsvpn moves into the profile's
//!   namespace, as wireguard-go's.
//!
//! What keeps the userspace path's charon off the host's own traffic (each
//! verified, see README "IPsec profiles"):
//! - its own `strongswan.conf` (fixed plugin list, no `updown`, no
//!   `resolvconf`), its own `/run` (a private mount namespace: charon's pid
//!   file is fixed), its own VICI socket, random IKE ports;
//! - kernel-libipsec must install a route for each SA and a virtual IP on
//!   the TUN: the virtual IP goes on the profile's own TUN, the routes into
//!   a routing table of the profile's own that only packets carrying the
//!   profile's firewall mark look up, which nothing on the host sets; the
//!   TUN's move into the namespace takes both with it;
//! - DNS from the configuration payload is written by the `resolve` plugin
//!   into charon's own `/run/resolv.conf`, which nsvpn reads;
//! - charon never re-initiates: once the gateway lost the SA, the profile's
//!   supervisor replaces charon and its TUN, keeping the namespace
//!   ([`reconnect`]).
//!
//! nsvpn drives charon over VICI ([`vici`]); it never parses `swanctl`.

pub mod reconnect;
pub mod settings;
pub mod swanctl;
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
use crate::backend::{Connected, Reconnect, at, check_secret};
use crate::ipnet::IpNet;
use crate::names::{Names, fnv1a};
use crate::netlink::Netlink;
use crate::profile::Profile;
use crate::state::State;
use crate::tunnel::{TunAddr, TunnelSetup};
use crate::{paths, signals, util, vlog};

pub const PROGRAM: &str = "charon";

/// Where Debian (and Fedora) install charon: the only programs nsvpn runs
/// for an IPsec profile.
const CHARON: &[&str] = &["/usr/lib/ipsec/charon", "/usr/libexec/ipsec/charon"];

/// The plugins charon loads, and nothing else (`load_modular = no`): no
/// `updown` (scripts), no `stroke`, no `resolvconf` program; on the
/// userspace path ESP is kernel-libipsec's (kernel-netlink then only
/// installs its routes and virtual IP), on the kernel path
/// ([`kernel_plugins`]) kernel-netlink installs the SAs and policies.
/// Certificates: x509, pem, pkcs1/pkcs8 (RSA keys, the keys OpenSSL
/// writes), gmp (RSA); openssl (ECDSA, and MD4 and DES for MSCHAPv2) where
/// libstrongswan-standard-plugins is installed. EAP: md5 (with the md5
/// hasher), mschapv2 where libcharon-extauth-plugins is installed. charon
/// skips a plugin it lacks ("failed to load ... no plugin file
/// available") and starts with the others.
const PLUGINS: &str = "random nonce kdf aes sha1 sha2 md5 hmac gmp openssl pem pkcs1 pkcs8 \
                       x509 pubkey kernel-libipsec kernel-netlink socket-default vici resolve \
                       eap-identity eap-md5 eap-mschapv2";

/// The kernel path's plugins: the same without kernel-libipsec.
fn kernel_plugins() -> String {
    PLUGINS
        .split_whitespace()
        .filter(|p| *p != "kernel-libipsec")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name of the connection and its child in charon.
const CONN: &str = "nsvpn";

pub(crate) use settings::settings;
pub use settings::{Auth, FIELDS, Settings};

/// What nsvpn's side proves itself with, read from the profile's files.
#[derive(Clone)]
pub enum Credential {
    Psk(String),
    /// The certificate (PEM or DER) and its private key.
    Cert {
        cert: Vec<u8>,
        key: Vec<u8>,
    },
    /// The EAP user name and password.
    Eap {
        user: String,
        password: String,
    },
}

/// Everything read and checked before the machine is touched.
pub struct Prepared {
    pub charon: PathBuf,
    pub server: String,
    pub local_id: Option<String>,
    pub remote_id: String,
    pub auth: Auth,
    credential: Credential,
    /// The gateway's CA certificate (with a certificate or EAP).
    ca: Option<Vec<u8>>,
    pub proposals: Vec<String>,
    pub esp_proposals: Vec<String>,
    /// The profile's `userspace` (None: the kernel path where it works).
    pub userspace: Option<bool>,
    pub wait: Duration,
    /// A swanctl.conf-style file's connection and secrets, sent as they are
    /// (then `credential`, `ca` and the proposals are unused).
    file: Option<swanctl::Loaded>,
}

impl Prepared {
    /// What nsvpn's side proves itself with, for messages.
    fn what(&self) -> &'static str {
        self.file.as_ref().map_or(self.auth.what(), |f| f.what)
    }

    /// What to check when the gateway refuses nsvpn's side.
    fn fields(&self) -> String {
        self.file
            .as_ref()
            .map_or(self.auth.fields().to_string(), |f| f.fields.clone())
    }
}

/// How ESP is done for a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datapath {
    /// charon's kernel-libipsec over a TUN device.
    Userspace,
    /// The kernel, through the profile's XFRM interface with this `if_id`
    /// (also the CHILD_SA's `reqid`).
    Kernel { if_id: u32 },
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("server", &self.server)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("auth", &self.auth.local())
            .field("secret", &"(hidden)")
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
    Ok(charon.to_path_buf())
}

/// The userspace path needs charon's kernel-libipsec plugin.
fn check_libipsec(charon: &Path) -> Result<()> {
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
    Ok(())
}

/// Reads a file the profile names: trusted like the profile (a secret
/// also warned about when others can read it), not empty.
fn read_file(
    profile: &Profile,
    field: &str,
    path: &Path,
    secret: bool,
    what: &str,
) -> Result<Vec<u8>> {
    if secret {
        check_secret(profile, field, path)?;
    } else {
        crate::trust::check(
            path,
            &at(profile, field),
            crate::trust::Role::field(profile, field),
        )?;
    }
    let data = std::fs::read(path)
        .with_context(|| format!("{} ({})", at(profile, field), path.display()))?;
    if data.iter().all(u8::is_ascii_whitespace) {
        bail!(
            "{} ({}): the file is empty: put the {what}",
            at(profile, field),
            path.display()
        );
    }
    Ok(data)
}

/// The first line of a file holding a key or password.
fn first_line(profile: &Profile, field: &str, path: &Path, what: &str) -> Result<String> {
    let data = read_file(
        profile,
        field,
        path,
        true,
        &format!("{what} on its first line"),
    )?;
    let text = String::from_utf8(data).map_err(|_| {
        anyhow!(
            "{} ({}): the file is not text: put the {what} on its first line",
            at(profile, field),
            path.display()
        )
    })?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        bail!(
            "{} ({}): the first line is empty: put the {what} on it",
            at(profile, field),
            path.display()
        );
    }
    Ok(line)
}

/// A PEM block's label (`CERTIFICATE`, `PRIVATE KEY`...) or, for DER, None.
fn pem_label(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(text[start..start + end].to_string())
}

/// Checks that a file holds a certificate (PEM, or DER: an ASN.1 sequence).
fn check_cert(profile: &Profile, field: &str, path: &Path, data: &[u8]) -> Result<()> {
    match pem_label(data) {
        Some(l) if l == "CERTIFICATE" || l == "X509 CERTIFICATE" => Ok(()),
        None if data.first() == Some(&0x30) => Ok(()),
        _ => bail!(
            "{} ({}): not an X.509 certificate (PEM or DER)",
            at(profile, field),
            path.display()
        ),
    }
}

/// Checks that a file holds an unencrypted private key.
fn check_key(profile: &Profile, path: &Path, data: &[u8]) -> Result<()> {
    check_key_data(
        &format!("{} ({})", at(profile, "vpn.key_file"), path.display()),
        data,
    )
}

/// Checks that `data` is an unencrypted private key; `label` says where
/// it is from.
fn check_key_data(label: &str, data: &[u8]) -> Result<()> {
    let encrypted = pem_label(data).is_some_and(|l| l.contains("ENCRYPTED"))
        || std::str::from_utf8(data).is_ok_and(|t| t.contains("Proc-Type: 4,ENCRYPTED"));
    if encrypted {
        bail!(
            "{label}: the private key is encrypted, and nothing could type its passphrase: \
             decrypt it into a file only root may read (openssl pkey -in KEY -out KEY.plain), \
             and name that"
        );
    }
    match pem_label(data) {
        Some(l) if l.ends_with("PRIVATE KEY") => Ok(()),
        None if data.first() == Some(&0x30) => Ok(()),
        _ => bail!("{label}: not a private key (PEM or DER)"),
    }
}

pub fn prepare(profile: &Profile, s: &Settings, wait: Duration) -> Result<Prepared> {
    let credential = match &s.auth {
        Auth::Psk { psk_file } => Credential::Psk(first_line(
            profile,
            "vpn.psk_file",
            psk_file,
            "pre-shared key",
        )?),
        Auth::Cert {
            cert_file,
            key_file,
        } => {
            let cert = read_file(
                profile,
                "vpn.cert_file",
                cert_file,
                false,
                "certificate in it",
            )?;
            check_cert(profile, "vpn.cert_file", cert_file, &cert)?;
            let key = read_file(profile, "vpn.key_file", key_file, true, "private key in it")?;
            check_key(profile, key_file, &key)?;
            Credential::Cert { cert, key }
        }
        Auth::Eap {
            user,
            password_file,
        } => Credential::Eap {
            user: user.clone(),
            password: first_line(profile, "vpn.password_file", password_file, "password")?,
        },
    };
    let ca = match &s.ca_file {
        Some(f) => {
            let ca = read_file(profile, "vpn.ca_file", f, false, "CA certificate in it")?;
            check_cert(profile, "vpn.ca_file", f, &ca)?;
            Some(ca)
        }
        None => None,
    };
    let charon = find_charon()?;
    if s.userspace == Some(true) {
        check_libipsec(&charon)?;
    }
    Ok(Prepared {
        charon,
        server: s.server.clone(),
        local_id: s.local_id.clone(),
        remote_id: s.remote_id.clone().unwrap_or_else(|| s.server.clone()),
        auth: s.auth.clone(),
        credential,
        ca,
        proposals: s.proposals.clone(),
        esp_proposals: s.esp_proposals.clone(),
        userspace: s.userspace,
        wait,
        file: None,
    })
}

/// A profile with a swanctl.conf-style connection file: the file read and
/// checked (see [`swanctl`]), and what it names read.
pub fn prepare_file(
    profile: &Profile,
    s: &swanctl::FileSettings,
    wait: Duration,
) -> Result<Prepared> {
    let (loaded, checked) = swanctl::load(profile, s)?;
    let auth = match checked.auth {
        swanctl::LocalAuth::Psk => Auth::Psk {
            psk_file: s.config.clone(),
        },
        swanctl::LocalAuth::Pubkey => Auth::Cert {
            cert_file: s.config.clone(),
            key_file: s.config.clone(),
        },
        swanctl::LocalAuth::Eap => Auth::Eap {
            user: checked.eap_id.clone().unwrap_or_default(),
            password_file: s.config.clone(),
        },
    };
    Ok(Prepared {
        charon: find_charon()?,
        remote_id: checked
            .remote_id
            .clone()
            .unwrap_or_else(|| checked.server.clone()),
        server: checked.server,
        local_id: checked.local_id,
        auth,
        credential: Credential::Psk(String::new()),
        ca: None,
        proposals: Vec::new(),
        esp_proposals: Vec::new(),
        userspace: s.userspace,
        wait,
        file: Some(loaded),
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
         \x20     flush_line = yes\n\
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

/// The kernel path's `strongswan.conf`: kernel-netlink installs the SAs
/// and policies (bound to the profile's `if_id` by the connection), and
/// nothing else: no route (`install_routes = no`), no routing table and so
/// no rule (`routing_table = 0`: kernel-netlink adds its rule whenever a
/// table is set, routes or not), no virtual IP (`install_virtual_ip = no`:
/// nsvpn puts it on the XFRM interface, inside). The log's times are
/// seconds since the epoch, which `status` reads.
pub fn render_kernel_conf(profile: &str) -> String {
    format!(
        "# Written by nsvpn for profile {profile}: the configuration of its own charon,\n\
         # which sees {} as /run. Regenerated on every `nsvpn up`.\n\
         # The kernel path: ESP in the kernel, SAs and policies bound to the profile's\n\
         # XFRM interface (if_id), which is in the profile's namespace.\n\
         charon {{\n\
         \x20 load_modular = no\n\
         \x20 load = {}\n\
         \x20 port = 0\n\
         \x20 port_nat_t = 0\n\
         \x20 retransmit_tries = 3\n\
         \x20 retransmit_timeout = 1.0\n\
         \x20 retransmit_base = 1.5\n\
         \x20 install_routes = no\n\
         \x20 install_virtual_ip = no\n\
         \x20 routing_table = 0\n\
         \x20 plugins {{\n\
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
         \x20     time_format = %s\n\
         \x20     flush_line = yes\n\
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
        kernel_plugins(),
    )
}

/// The first `if_id` a profile's XFRM interface tries (the next ones
/// follow when another interface holds it): never 0, which the kernel
/// refuses, and far above the small reqids charons allocate by themselves.
pub fn first_if_id(profile: &str) -> u32 {
    0x6e76_0000 | (fnv1a(format!("ipsec-if:{profile}").as_bytes()) & 0xffff)
}

/// How many `if_id`s are tried before giving up.
const IF_ID_TRIES: u32 = 64;

/// Creates the profile's XFRM interface `name` on the host with an `if_id`
/// no other XFRM interface has (the kernel refuses a taken one: EEXIST).
/// None when this kernel has no XFRM interfaces (no `xfrm_interface`
/// module: EOPNOTSUPP).
async fn create_xfrm(host: &Netlink, profile: &str, name: &str) -> Result<Option<u32>> {
    use nix::errno::Errno;
    if host.link_by_name(name).await?.is_some() {
        bail!("a link called {name} is already on the host: remove it (ip link del {name})");
    }
    let first = first_if_id(profile);
    for if_id in (first..).take(IF_ID_TRIES as usize) {
        match host.create_xfrm(name, if_id).await {
            Ok(()) => return Ok(Some(if_id)),
            Err(e) if crate::netlink::errno(&e) == Some(Errno::EEXIST as i32) => {
                vlog!("if_id {if_id:#x} is another XFRM interface's; trying the next");
            }
            Err(e) if matches!(crate::netlink::errno(&e), Some(c) if c == Errno::EOPNOTSUPP as i32) =>
            {
                vlog!("no XFRM interfaces in this kernel ({e})");
                return Ok(None);
            }
            Err(e) => {
                return Err(anyhow!(e).context(format!("cannot create the XFRM interface {name}")));
            }
        }
    }
    bail!(
        "cannot create the XFRM interface {name}: the if_ids {first:#x} to {:#x} are all taken",
        first + IF_ID_TRIES - 1
    )
}

/// A list of proposals, or strongSwan's defaults.
fn proposals(list: &[String]) -> Vec<&str> {
    if list.is_empty() {
        vec!["default"]
    } else {
        list.iter().map(String::as_str).collect()
    }
}

/// The connection nsvpn loads (`load-conn`): IKEv2 to the server, a
/// virtual IP asked for, whatever the gateway offers behind it, nsvpn's
/// side authenticated as the profile says (the gateway with the same key,
/// or with a certificate from `ca_file`), dead peer detection.
///
/// On the kernel path the CHILD_SA is bound to the profile's XFRM
/// interface (`if_id_in`/`if_id_out`) with a `reqid` of its own (several
/// charons share the host's XFRM database; each would start its reqids at
/// 1), and charon re-establishes by itself: when the gateway deletes the
/// SA (a restart: `close_action = start`), stops answering (`dpd_action =
/// restart`), or is not there yet (`keyingtries = 0`: it retries until it
/// is), asking for the same virtual IP again. A swanctl.conf-style file's
/// connection gets the same (its own `if_id_*`, `reqid` and marks are
/// refused when the file is checked).
pub fn connection(p: &Prepared, path: Datapath) -> Message {
    let m = match &p.file {
        Some(f) => f.conn.clone(),
        None => own_connection(p),
    };
    match path {
        Datapath::Userspace => m,
        Datapath::Kernel { if_id } => bind_to_if_id(m, if_id),
    }
}

/// Sets `k = v` in `m`, replacing what was there.
fn set(mut m: Message, k: &str, v: impl AsRef<[u8]>) -> Message {
    m.0.retain(|(n, _)| n != k);
    m.kv(k, v)
}

/// The kernel path's settings put into a connection (`{CONN: {...,
/// children: {CONN: {...}}}}`).
fn bind_to_if_id(m: Message, if_id: u32) -> Message {
    let map = |m: Message, name: &str, f: &dyn Fn(Message) -> Message| {
        Message(
            m.0.into_iter()
                .map(|(k, v)| match v {
                    vici::Value::Section(s) if k == name => (k, vici::Value::Section(f(s))),
                    v => (k, v),
                })
                .collect(),
        )
    };
    map(m, CONN, &|conn| {
        let conn = set(conn, "keyingtries", "0");
        map(conn, "children", &|children| {
            map(children, CONN, &|child| {
                let child = set(child, "if_id_in", format!("{if_id:#x}"));
                let child = set(child, "if_id_out", format!("{if_id:#x}"));
                let child = set(child, "reqid", if_id.to_string());
                let child = set(child, "dpd_action", "restart");
                set(child, "close_action", "start")
            })
        })
    })
}

/// The connection nsvpn writes from a profile's own fields.
fn own_connection(p: &Prepared) -> Message {
    let mut local = Message::new().kv("auth", p.auth.local());
    let mut remote = Message::new();
    match &p.credential {
        Credential::Psk(_) => {
            remote = remote.kv("auth", "psk");
        }
        Credential::Cert { cert, .. } => {
            local = local.list("certs", [cert]);
            remote = remote.kv("auth", "pubkey");
        }
        Credential::Eap { user, .. } => {
            local = local.kv("eap_id", user);
            remote = remote.kv("auth", "pubkey");
        }
    }
    let id = match (&p.local_id, &p.credential) {
        (Some(id), _) => Some(id.as_str()),
        (None, Credential::Eap { user, .. }) => Some(user.as_str()),
        // A certificate's subject is its identity.
        (None, _) => None,
    };
    if let Some(id) = id {
        local = local.kv("id", id);
    }
    remote = remote.kv("id", &p.remote_id);
    if let Some(ca) = &p.ca {
        remote = remote.list("cacerts", [ca]);
    }
    let child = Message::new()
        .list("remote_ts", ["0.0.0.0/0"])
        .list("esp_proposals", proposals(&p.esp_proposals));
    let conn = Message::new()
        .kv("version", "2")
        .list("remote_addrs", [&p.server])
        .list("vips", ["0.0.0.0"])
        .list("proposals", proposals(&p.proposals))
        .kv("dpd_delay", "10s")
        .kv("unique", "replace");
    // Never re-initiated by charon on the userspace path (it would put the
    // virtual IP on the host's uplink): the supervisor makes a new charon
    // instead (reconnect.rs). The kernel path's binding changes this.
    let child = child.kv("dpd_action", "clear");
    Message::new().section(
        CONN,
        conn.section("local-1", local)
            .section("remote-1", remote)
            .section("children", Message::new().section(CONN, child)),
    )
}

/// The secrets charon is given before it connects: the pre-shared key for
/// exactly the two identities, the certificate's private key, or the EAP
/// password for the user. (command, message)
fn credentials(p: &Prepared) -> Vec<(&'static str, Message)> {
    if let Some(f) = &p.file {
        return f.secrets.clone();
    }
    match &p.credential {
        Credential::Psk(psk) => vec![(
            "load-shared",
            Message::new()
                .kv("id", "nsvpn-psk")
                .kv("type", "IKE")
                .kv("data", psk)
                .list(
                    "owners",
                    [p.local_id.as_deref().unwrap_or_default(), &p.remote_id],
                ),
        )],
        Credential::Cert { key, .. } => {
            vec![("load-key", Message::new().kv("type", "any").kv("data", key))]
        }
        Credential::Eap { user, password } => vec![(
            "load-shared",
            Message::new()
                .kv("id", "nsvpn-eap")
                .kv("type", "EAP")
                .kv("data", password)
                .list("owners", [user]),
        )],
    }
}

/// Why an initiation failed, in plain words, from charon's answer and the
/// log lines it streamed while trying.
pub fn failure_reason(p: &Prepared, errmsg: &str, log: &[String]) -> String {
    let server = &p.server;
    let has = |pats: &[&str]| {
        log.iter()
            .rev()
            .find(|l| pats.iter().any(|p| l.contains(p)))
            .map(|l| l.trim().to_string())
    };
    // The gateway refused nsvpn's side.
    if let Some(l) = has(&[
        "AUTHENTICATION_FAILED",
        "received EAP_FAILURE",
        "EAP method",
        "EAP-MS-CHAPv2 failed",
    ])
    .filter(|l| !l.contains("succeeded"))
    {
        return format!(
            "authentication failed: the gateway refused {} (check {}) [{l}]",
            p.what(),
            p.fields()
        );
    }
    // nsvpn's side refused the gateway.
    if let Some(l) = has(&[
        "no trusted",
        "no issuer certificate found",
        "constraint check failed",
        "certificate status is not available",
        "failed to establish trust",
    ])
    .or_else(|| {
        has(&["authentication of '"]).filter(|l| l.contains("failed") && !l.contains("(myself)"))
    }) {
        let why = match (&p.file, &p.auth) {
            (Some(f), Auth::Psk { .. }) => format!(
                "it does not know the pre-shared key ({})",
                f.config.display()
            ),
            (Some(f), _) => format!(
                "its certificate is not signed by the CA of `remote.cacerts` in {}, or does not \
                 name {:?} (`remote.id`)",
                f.config.display(),
                p.remote_id
            ),
            (None, Auth::Psk { .. }) => {
                "it does not know the pre-shared key (vpn.psk_file)".to_string()
            }
            (None, _) => format!(
                "its certificate is not signed by the CA of vpn.ca_file, or does not name \
                 {:?} (vpn.remote_id)",
                p.remote_id
            ),
        };
        return format!("authentication failed: the gateway could not prove itself: {why} [{l}]");
    }
    if let Some(l) = has(&["NO_PROPOSAL_CHOSEN", "no acceptable proposal"]) {
        let from = match &p.file {
            Some(f) => format!("proposals and esp_proposals in {}", f.config.display()),
            None => "vpn.proposals, vpn.esp_proposals".into(),
        };
        return format!(
            "no proposal chosen: the gateway accepts none of the algorithms offered \
             ({from}, else strongSwan's defaults) [{l}]"
        );
    }
    if let Some(l) = has(&["TS_UNACCEPTABLE"]) {
        return format!("the gateway accepts none of the networks asked for [{l}]");
    }
    if let Some(l) = has(&["giving up after", "unable to resolve", "no route"]) {
        return format!("peer unreachable: no answer from {server} [{l}]");
    }
    if errmsg.contains("not established after") || errmsg.contains("timed out") {
        return format!(
            "timed out: no tunnel from {server} in {} s (nsvpn up --timeout SECS waits longer)",
            p.wait.as_secs()
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

/// The SA as charon lists it (`list-sas`): state, identities, algorithms,
/// virtual IP, the CHILD_SA's networks and traffic. `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SaInfo {
    /// ESTABLISHED, CONNECTING, REKEYING, DELETING...
    pub ike_state: String,
    pub remote_host: String,
    pub remote_id: String,
    /// Seconds since the IKE_SA was established.
    pub established: Option<u64>,
    /// The IKE algorithms agreed on ("AES_CBC-128/HMAC_SHA2_256_128/...").
    pub ike_proposal: String,
    pub vips: Vec<String>,
    /// The installed CHILD_SA, if any.
    pub child: Option<ChildSa>,
}

/// A CHILD_SA (the ESP tunnel), as charon lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChildSa {
    /// charon's unique id: a rekeyed CHILD_SA gets a new one.
    pub id: u64,
    pub state: String,
    pub esp_proposal: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Seconds since it was installed, and until it is rekeyed.
    pub installed: Option<u64>,
    pub rekey_in: Option<u64>,
}

impl SaInfo {
    /// The networks behind the gateway (for the tunnel's routes).
    pub fn remote_ts(&self) -> &[String] {
        self.child.as_ref().map_or(&[], |c| &c.remote_ts)
    }
}

/// "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072" from a
/// list-sas entry's algorithm keys.
fn algorithms(m: &Message) -> String {
    let encr = match (m.str("encr-alg"), m.str("encr-keysize")) {
        (Some(a), Some(k)) => Some(format!("{a}-{k}")),
        (a, _) => a,
    };
    [
        encr,
        m.str("integ-alg"),
        m.str("prf-alg"),
        m.str("dh-group"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/")
}

/// Reads the IKE_SA named [`CONN`] out of `list-sa` events.
pub fn sa_info(events: &[Message]) -> Option<SaInfo> {
    let num = |m: &Message, k: &str| m.str(k).and_then(|v| v.parse::<u64>().ok());
    // The CHILD_SA that carries traffic: the newest installed one, else one
    // being rekeyed (it carries traffic until its successor is installed).
    let child_of = |ike: &Message| {
        let children = ike.sub("child-sas")?;
        let newest = |states: &[&str]| {
            children
                .sections()
                .filter(|(_, c)| states.contains(&c.str("state").unwrap_or_default().as_str()))
                .max_by_key(|(_, c)| num(c, "uniqueid"))
                .map(|(_, c)| c)
        };
        let c = newest(&["INSTALLED"]).or_else(|| newest(&["REKEYING", "REKEYED"]))?;
        Some(ChildSa {
            id: num(c, "uniqueid").unwrap_or(0),
            state: c.str("state").unwrap_or_default(),
            esp_proposal: algorithms(c),
            local_ts: c.strs("local-ts"),
            remote_ts: c.strs("remote-ts"),
            bytes_in: num(c, "bytes-in").unwrap_or(0),
            bytes_out: num(c, "bytes-out").unwrap_or(0),
            packets_in: num(c, "packets-in").unwrap_or(0),
            packets_out: num(c, "packets-out").unwrap_or(0),
            installed: num(c, "install-time"),
            rekey_in: num(c, "rekey-time"),
        })
    };
    // While an IKE_SA is rekeyed, charon lists the old and the new one:
    // the one holding the CHILD_SA, else the first.
    let ikes: Vec<&Message> = events.iter().filter_map(|e| e.sub(CONN)).collect();
    let ike = ikes
        .iter()
        .find(|i| child_of(i).is_some())
        .or_else(|| ikes.first())?;
    let child = child_of(ike);
    Some(SaInfo {
        ike_state: ike.str("state").unwrap_or_default(),
        remote_host: ike.str("remote-host").unwrap_or_default(),
        remote_id: ike.str("remote-id").unwrap_or_default(),
        established: num(ike, "established"),
        ike_proposal: algorithms(ike),
        vips: ike.strs("local-vips"),
        child,
    })
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

/// The SA of a profile that is up, for `status`: None when charon has
/// none, an error when charon cannot be asked (its socket is root's).
pub fn query(profile: &str) -> Result<Option<SaInfo>> {
    let mut c = Client::connect(&vici_socket(profile), Duration::from_secs(2))?;
    list_sas(&mut c)
}

/// The lines of charon's log that say why its SA went.
const LOSS: &[&str] = &[
    "received DELETE for IKE_SA",
    "received DELETE for ESP CHILD_SA",
    "giving up after",
    "closing CHILD_SA",
];

/// Whether the profile's tunnel is gone although charon runs, and charon
/// will not bring it back. On the userspace path: charon has no CHILD_SA
/// any more (the gateway deleted the SA, or stopped answering dead peer
/// detection), and on this path charon cannot make a new one (README,
/// "IPsec profiles"). On the kernel path charon makes a new one by itself
/// ([`reconnecting`] says so meanwhile); lost only when the new one came
/// with another virtual IP than the one nsvpn put on the interface (a
/// restarted gateway hands out its pool anew). None when it is there, or
/// charon cannot be asked.
pub fn lost(profile: &str, kernel: bool) -> Option<String> {
    if !kernel && crate::lifecycle::parts::supervisor_running(profile) {
        return None;
    }
    let sa = query(profile).ok()?;
    if kernel {
        let sa = sa.filter(|s| s.child.is_some())?;
        let on_tunnel: Vec<String> = TunnelRecord::load(profile)?
            .addresses
            .iter()
            .map(|a| a.split(['/', ' ']).next().unwrap_or(a).to_string())
            .collect();
        if sa.vips.iter().all(|v| on_tunnel.contains(v)) {
            return None;
        }
        return Some(format!(
            "charon re-established the IPsec SA with another virtual IP ({}) than the \
             tunnel's ({}): the gateway handed out its pool anew; `nsvpn down {profile}` and \
             `nsvpn up {profile}` apply it",
            sa.vips.join(", "),
            on_tunnel.join(", ")
        ));
    }
    if sa.as_ref().is_some_and(|s| s.child.is_some()) {
        return None;
    }
    let state = sa
        .map(|s| format!(" (its IKE_SA is {})", s.ike_state))
        .unwrap_or_default();
    Some(format!(
        "charon has no IPsec SA with the gateway any more{state}, and its supervisor, which \
         would make a new one, is not running: {}",
        why_lost(profile)
    ))
}

/// Why charon lost its SA, from the end of its log.
pub fn why_lost(profile: &str) -> String {
    let log = run_dir(profile).join("charon.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let why = text
        .lines()
        .rev()
        .find(|l| LOSS.iter().any(|p| l.contains(p)))
        .map(|l| format!(" [charon: {}]", l.trim()))
        .unwrap_or_default();
    format!("the gateway deleted the SA (a restart?) or stopped answering dead peer detection{why}")
}

/// Whether the profile's supervisor is making a new SA: since when and
/// the last error. Also when it is about to (charon has no CHILD_SA, the
/// supervisor runs and looks again within a second or two).
pub fn reconnecting(profile: &str) -> Result<Option<crate::backend::Reconnect>, String> {
    if !crate::lifecycle::parts::supervisor_running(profile) {
        return Ok(None);
    }
    if let Some(r) = reconnect::Record::load(profile) {
        return Ok(Some(r.reconnect()));
    }
    match query(profile) {
        Ok(Some(sa)) if sa.child.is_some() => Ok(None),
        Ok(_) => Ok(Some(crate::backend::Reconnect {
            since: util::now_unix(),
            last_error: Some(why_lost(profile)),
        })),
        // Between two charons, or charon's socket is root's.
        Err(e) => Err(format!("{e:#}")),
    }
}

/// On the kernel path: whether charon is making a new SA by itself (it has
/// no installed CHILD_SA), since when and why, from its log (whose times
/// are seconds since the epoch on this path): the first line that says the
/// SA went, after the last CHILD_SA established. An error when charon
/// cannot be asked.
pub fn reconnecting_by_charon(profile: &str) -> Result<Option<Reconnect>, String> {
    let sa = query(profile).map_err(|e| format!("{e:#}"))?;
    if sa.as_ref().is_some_and(|s| s.child.is_some()) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(run_dir(profile).join("charon.log")).unwrap_or_default();
    Ok(Some(reconnect_from_log(&text, util::now_unix())))
}

/// [`reconnecting`]'s reading of charon's log.
pub fn reconnect_from_log(log: &str, now: u64) -> Reconnect {
    let lines: Vec<&str> = log.lines().collect();
    let after = lines
        .iter()
        .rposition(|l| l.contains("CHILD_SA nsvpn{") && l.contains("} established"))
        .map_or(0, |i| i + 1);
    let first = lines[after..]
        .iter()
        .find(|l| LOSS.iter().any(|p| l.contains(p)));
    let since = first
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(now);
    // The last thing charon said about the new attempt, else why it went.
    let last = lines[after..]
        .iter()
        .rev()
        .find(|l| {
            LOSS.iter().any(|p| l.contains(p))
                || l.contains("retransmit")
                || l.contains("initiating IKE_SA")
        })
        .map(|l| {
            let l = l.trim();
            // "1712345678 09[IKE] text": the text.
            l.split_once(']').map_or(l, |(_, t)| t).trim().to_string()
        });
    Reconnect {
        since,
        last_error: last,
    }
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
    for t in sa.remote_ts() {
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

/// The kernel path's interface MTU: room for ESP in UDP (charon's NAT-T
/// encapsulation) on a 1500-byte uplink.
pub const KERNEL_MTU: u32 = 1400;

/// Chooses the path: the profile's `userspace`, else the kernel's where
/// an XFRM interface can be made. On the kernel path the interface is made
/// here, on the host, recorded, and moved into the namespace `ns` (in the
/// link group that goes with the veth pair).
fn choose_path(
    profile: &Profile,
    names: &Names,
    p: &Prepared,
    ns: BorrowedFd<'_>,
    st: &mut State,
) -> Result<Datapath> {
    if p.userspace == Some(true) {
        return Ok(Datapath::Userspace);
    }
    let if_id = util::block_on(async {
        let host = Netlink::here()?;
        let Some(if_id) = create_xfrm(&host, &profile.name, &names.tunnel).await? else {
            return Ok::<_, anyhow::Error>(None);
        };
        // Recorded before anything else can fail: `down` and a rollback
        // then know the path.
        st.backend.ipsec_if_id = Some(if_id);
        st.save()?;
        let l = host
            .link_by_name(&names.tunnel)
            .await?
            .ok_or_else(|| anyhow!("the XFRM interface {} vanished", names.tunnel))?;
        host.move_to_netns(l.index, ns.as_fd()).await?;
        let inner = Netlink::in_netns(ns.as_fd())?;
        let l = inner.link_by_name(&names.tunnel).await?.ok_or_else(|| {
            anyhow!(
                "the XFRM interface {} did not arrive in the namespace",
                names.tunnel
            )
        })?;
        inner.set_group(l.index, crate::names::LINK_GROUP).await?;
        Ok(Some(if_id))
    })??;
    match if_id {
        Some(if_id) => Ok(Datapath::Kernel { if_id }),
        None if p.userspace == Some(false) => Err(anyhow!(
            "{}: is false (the kernel path), but this kernel has no XFRM interfaces (the \
             xfrm_interface module): load it (modprobe xfrm_interface), or set `userspace = true` \
             or leave the field out for charon's kernel-libipsec",
            at(profile, "vpn.userspace")
        )),
        None => {
            check_libipsec(&p.charon).map_err(|e| {
                e.context(
                    "this kernel has no XFRM interfaces (xfrm_interface module), so the \
                           userspace path is used",
                )
            })?;
            Ok(Datapath::Userspace)
        }
    }
}

/// Starts the profile's charon, connects, and moves the tunnel into the
/// namespace `ns` (the userspace path's TUN; the kernel path's XFRM
/// interface is there before charon starts).
pub fn connect(
    profile: &Profile,
    names: &Names,
    p: &Prepared,
    ns: BorrowedFd<'_>,
    st: &mut State,
) -> Result<Connected> {
    let t0 = Instant::now();
    let path = choose_path(profile, names, p, ns, st)?;
    vlog!("IPsec path: {path:?}");
    let (pid, tun) = start_charon(&profile.name, names, p, path, |pid| {
        st.pid = Some(pid);
        st.save()
    })?;
    let own = t0.elapsed();
    let t1 = Instant::now();
    let sa = establish(&profile.name, p, path, pid)?;
    let waited = t1.elapsed();
    let t2 = Instant::now();
    let applied = move_in(
        &profile.name,
        names,
        tun.as_deref(),
        &sa,
        ns,
        &st.overrides,
        1,
    )?;
    let how = match path {
        Datapath::Userspace => "charon kernel-libipsec".to_string(),
        Datapath::Kernel { if_id } => format!("kernel, XFRM interface if_id {if_id:#x}"),
    };
    Ok(Connected {
        what: format!(
            "IPsec, {how}, virtual IP {}, routes {}",
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

/// A failure to connect, with the end of charon's log.
fn failed(profile: &str, what: String) -> anyhow::Error {
    let log = run_dir(profile).join("charon.log");
    anyhow!(
        "charon did not connect: {what}\nthe end of its log ({}, removed with the rest):\n{}",
        log.display(),
        util::tail(&log, 12)
    )
}

/// Starts a charon of the profile's own (its own configuration, `/run`
/// and VICI socket) for the datapath `path`, `record` told its pid at once
/// (so that a rollback finds it), and waits for its VICI socket and, on
/// the userspace path, the TUN device kernel-libipsec opens on the host:
/// (pid, the TUN's name).
pub(crate) fn start_charon(
    profile: &str,
    names: &Names,
    p: &Prepared,
    path: Datapath,
    record: impl FnOnce(u32) -> Result<()>,
) -> Result<(u32, Option<String>)> {
    let dir = run_dir(profile);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let conf = dir.join("strongswan.conf");
    let text = match path {
        Datapath::Userspace => render_conf(profile, None),
        Datapath::Kernel { .. } => render_kernel_conf(profile),
    };
    util::write_atomic(&conf, text.as_bytes(), 0o600)?;
    // A charon that ended (killed, or replaced on a reconnect) leaves its
    // socket: the wait below is for the new one.
    let sock = vici_socket(profile);
    let _ = std::fs::remove_file(&sock);
    let log = dir.join("charon.log");
    let out = paths::log_file(profile, PROGRAM);
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
    record(pid)?;
    vlog!("charon started (pid {pid}), log in {}", log.display());
    let start_deadline = Instant::now() + Duration::from_secs(10);
    wait_for(pid, start_deadline, "opening its VICI socket", || {
        sock.exists().then_some(())
    })
    .map_err(|e| failed(profile, format!("{e:#}")))?;
    if let Datapath::Kernel { .. } = path {
        return Ok((pid, None));
    }
    let tun = wait_for(pid, start_deadline, "opening its TUN device", || {
        charon_tun(pid)
    })
    .map_err(|e| failed(profile, format!("{e:#}")))?;
    vlog!("charon's TUN device is {tun}");
    util::write_atomic(&conf, render_conf(profile, Some(&tun)).as_bytes(), 0o600)?;
    Ok((pid, Some(tun)))
}

/// Loads the secrets and the connection (for the datapath `path`) into
/// the charon `pid` and initiates: the SA once its CHILD_SA is installed,
/// or why not.
pub(crate) fn establish(profile: &str, p: &Prepared, path: Datapath, pid: u32) -> Result<SaInfo> {
    let fail = |what: String| failed(profile, what);
    let mut c = Client::connect(&vici_socket(profile), p.wait + Duration::from_secs(5))?;
    if path == Datapath::Userspace {
        // The configuration now names the TUN (start_charon).
        vici::check(
            "reload-settings",
            &c.call("reload-settings", &Message::new())?,
        )?;
    }
    for (cmd, m) in credentials(p) {
        vici::check(cmd, &c.call(cmd, &m)?)?;
    }
    vici::check("load-conn", &c.call("load-conn", &connection(p, path))?)?;
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
        return Err(fail(failure_reason(p, &errmsg, &lines)));
    }
    // The CHILD_SA may show as installed a moment after `initiate` answers.
    for _ in 0..50 {
        if let Some(sa) = list_sas(&mut c)?.filter(|s| s.child.is_some()) {
            return Ok(sa);
        }
        if !util::alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(fail(
        "charon reports no installed CHILD_SA after connecting".into(),
    ))
}

/// Moves the tunnel into the namespace `ns`: on the userspace path
/// charon's TUN device `tun` (the virtual IP and the SA routes in the
/// profile's own table go with it, off the host), named the profile's
/// tunnel; on the kernel path (`tun` None) the XFRM interface is there
/// already. Applies what the SA says (virtual IP, routes, DNS), replacing
/// what an earlier tunnel left; records the tunnel (`connects`: how many
/// times it was made).
pub(crate) fn move_in(
    profile: &str,
    names: &Names,
    tun: Option<&str>,
    sa: &SaInfo,
    ns: BorrowedFd<'_>,
    overrides: &crate::tunnel::Overrides,
    connects: u32,
) -> Result<crate::tunnel::Applied> {
    let resolv = std::fs::read_to_string(run_dir(profile).join("resolv.conf")).unwrap_or_default();
    let mut setup = setup_from_sa(&names.tunnel, sa, dns_servers(&resolv))?;
    if tun.is_none() {
        setup.mtu = Some(KERNEL_MTU);
    }
    let applied = util::block_on(async {
        let host = Netlink::here()?;
        let inner = Netlink::in_netns(ns.as_fd())?;
        let index = match tun {
            Some(tun) => {
                let l = host
                    .link_by_name(tun)
                    .await?
                    .ok_or_else(|| anyhow!("charon's TUN device {tun} is gone from the host"))?;
                // The TUN of a charon that was replaced goes with it; should
                // it linger, it yields its name.
                if inner.link_by_name(&names.tunnel).await?.is_some() {
                    inner.delete_link_named(&names.tunnel).await?;
                }
                host.move_to_netns(l.index, ns.as_fd()).await?;
                let l = inner.link_by_name(tun).await?.ok_or_else(|| {
                    anyhow!("charon's TUN device {tun} did not arrive in the namespace")
                })?;
                inner.rename(l.index, &names.tunnel).await?;
                l.index
            }
            None => {
                inner
                    .link_by_name(&names.tunnel)
                    .await?
                    .ok_or_else(|| {
                        anyhow!(
                            "the XFRM interface {} is gone from the namespace",
                            names.tunnel
                        )
                    })?
                    .index
            }
        };
        crate::tunnel::configure(&inner, ns, index, names, &setup, overrides).await
    })??;
    let rec = TunnelRecord {
        event: if connects > 1 { "reconnect" } else { "connect" }.into(),
        connected: true,
        at: util::now_unix(),
        connects,
        device: names.tunnel.clone(),
        addresses: applied.addresses.clone(),
        mtu: applied.mtu,
        routes: applied.routes.iter().map(ToString::to_string).collect(),
        dns: applied.dns.clone(),
    };
    rec.save(profile)?;
    Ok(applied)
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

/// After charon is gone, on the kernel path: the SAs and policies bound to
/// the profile's `if_id` that a killed charon left in the host's XFRM
/// database (the kernel keeps them, and they go on carrying the
/// namespace's traffic to the gateway, encrypted, until they are removed).
pub fn remove_sas(if_id: u32, problems: &mut Vec<String>) {
    match crate::xfrm::remove_if_id(if_id) {
        Ok((0, 0)) => {}
        Ok((s, p)) => {
            vlog!("removed {s} XFRM state(s) and {p} policies of if_id {if_id:#x} charon left")
        }
        Err(e) => problems.push(format!(
            "the XFRM states and policies of if_id {if_id:#x}: {e:#}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared() -> Prepared {
        Prepared {
            charon: "/usr/lib/ipsec/charon".into(),
            server: "vpn.example.com".into(),
            local_id: Some("alice@example.com".into()),
            remote_id: "vpn.example.com".into(),
            auth: Auth::Psk {
                psk_file: "/etc/nsvpn/x.psk".into(),
            },
            credential: Credential::Psk("s3cret".into()),
            ca: None,
            proposals: vec![],
            esp_proposals: vec![],
            userspace: None,
            wait: Duration::from_secs(20),
            file: None,
        }
    }

    fn cert_prepared() -> Prepared {
        Prepared {
            local_id: None,
            auth: Auth::Cert {
                cert_file: "/etc/nsvpn/c.crt".into(),
                key_file: "/etc/nsvpn/c.key".into(),
            },
            credential: Credential::Cert {
                cert: b"CERT".to_vec(),
                key: b"KEY".to_vec(),
            },
            ca: Some(b"CA".to_vec()),
            proposals: vec!["aes256-sha256-modp2048".into()],
            esp_proposals: vec!["aes256-sha256".into()],
            ..prepared()
        }
    }

    fn eap_prepared() -> Prepared {
        Prepared {
            local_id: None,
            auth: Auth::Eap {
                user: "dave".into(),
                password_file: "/etc/nsvpn/d.password".into(),
            },
            credential: Credential::Eap {
                user: "dave".into(),
                password: "pw".into(),
            },
            ca: Some(b"CA".to_vec()),
            ..prepared()
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
    fn the_kernel_paths_charon_configuration() {
        let conf = render_kernel_conf("echo");
        insta::assert_snapshot!(conf);
        // ESP in the kernel: no kernel-libipsec; no route, rule, table or
        // virtual IP of charon's on the host.
        assert!(!conf.contains("kernel-libipsec"));
        assert!(conf.contains("load = ") && conf.contains(" kernel-netlink "));
        for line in [
            "install_routes = no",
            "install_virtual_ip = no",
            "routing_table = 0",
        ] {
            assert!(conf.contains(line), "{line}");
        }
        assert!(!conf.contains("fwmark"));
        // Each profile starts at an if_id of its own, never 0.
        assert_ne!(first_if_id("echo"), first_if_id("foxtrot"));
        assert!(first_if_id("echo") >= 0x6e76_0000);
    }

    #[test]
    fn a_files_connection_is_bound_to_the_if_id_too() {
        // As a swanctl.conf file's connection arrives (dpd_action forced to
        // clear by the file's check, its other keys kept).
        let file = Message::new().section(
            CONN,
            Message::new().kv("version", "2").section(
                "children",
                Message::new().section(
                    CONN,
                    Message::new()
                        .kv("dpd_action", "clear")
                        .kv("rekey_time", "1h"),
                ),
            ),
        );
        let m = bind_to_if_id(file, 7);
        let conn = m.sub(CONN).unwrap();
        assert_eq!(conn.str("keyingtries").as_deref(), Some("0"));
        assert_eq!(conn.str("version").as_deref(), Some("2"));
        let child = conn.sub("children").unwrap().sub(CONN).unwrap();
        assert_eq!(child.str("if_id_in").as_deref(), Some("0x7"));
        assert_eq!(child.str("if_id_out").as_deref(), Some("0x7"));
        assert_eq!(child.str("reqid").as_deref(), Some("7"));
        assert_eq!(child.str("rekey_time").as_deref(), Some("1h"));
        assert_eq!(child.str("dpd_action").as_deref(), Some("restart"));
        assert_eq!(child.0.iter().filter(|(k, _)| k == "dpd_action").count(), 1);
    }

    #[test]
    fn the_kernel_paths_connection() {
        let if_id = 0x6e76_1234;
        let m = connection(&prepared(), Datapath::Kernel { if_id });
        insta::assert_snapshot!(m.to_string());
        let child = m
            .sub(CONN)
            .unwrap()
            .sub("children")
            .unwrap()
            .sub(CONN)
            .unwrap();
        assert_eq!(child.str("if_id_in").as_deref(), Some("0x6e761234"));
        assert_eq!(child.str("if_id_out").as_deref(), Some("0x6e761234"));
        assert_eq!(child.str("reqid").as_deref(), Some("1853231668"));
        assert_eq!(child.str("close_action").as_deref(), Some("start"));
        // The userspace path binds nothing and does not re-establish.
        let u = connection(&prepared(), Datapath::Userspace);
        let uchild = u
            .sub(CONN)
            .unwrap()
            .sub("children")
            .unwrap()
            .sub(CONN)
            .unwrap();
        assert_eq!(uchild.str("if_id_in"), None);
        assert_eq!(uchild.str("dpd_action").as_deref(), Some("clear"));
        assert_eq!(u.sub(CONN).unwrap().str("keyingtries"), None);
    }

    #[test]
    fn reconnecting_read_from_the_kernel_paths_log() {
        let log = "\
1700000000 05[IKE] CHILD_SA nsvpn{1} established with SPIs c1a2b3c4_i c5d6e7f8_o and TS 10.7.0.1/32 === 10.20.0.0/16
1700000100 07[IKE] received DELETE for IKE_SA nsvpn[1]
1700000100 07[IKE] deleting IKE_SA nsvpn[1] between 203.0.113.17[alice@lab]...203.0.113.18[echo.lab]
1700000100 07[IKE] initiating IKE_SA nsvpn[2] to 203.0.113.18
1700000101 09[IKE] retransmit 1 of request with message ID 0
";
        let r = reconnect_from_log(log, 1_700_000_105);
        assert_eq!(r.since, 1_700_000_100);
        assert_eq!(
            r.last_error.as_deref(),
            Some("retransmit 1 of request with message ID 0")
        );
        // Nothing said yet: since now.
        let r = reconnect_from_log("", 42);
        assert_eq!((r.since, r.last_error), (42, None));
    }

    #[test]
    fn the_connection_and_key_loaded_over_vici() {
        insta::assert_snapshot!(connection(&prepared(), Datapath::Userspace).to_string());
        let k = &credentials(&prepared())[0];
        assert_eq!(k.0, "load-shared");
        assert_eq!(k.1.str("data").as_deref(), Some("s3cret"));
        assert_eq!(k.1.strs("owners"), ["alice@example.com", "vpn.example.com"]);
        // The key never shows in a debug print.
        assert!(!format!("{:?}", prepared()).contains("s3cret"));
    }

    #[test]
    fn certificate_and_eap_connections() {
        let cert = connection(&cert_prepared(), Datapath::Userspace);
        insta::assert_snapshot!("cert_connection", cert.to_string());
        let k = &credentials(&cert_prepared())[0];
        assert_eq!((k.0, k.1.str("type").as_deref()), ("load-key", Some("any")));
        assert_eq!(k.1.str("data").as_deref(), Some("KEY"));
        let eap = connection(&eap_prepared(), Datapath::Userspace);
        insta::assert_snapshot!("eap_connection", eap.to_string());
        let k = &credentials(&eap_prepared())[0];
        assert_eq!(k.1.str("type").as_deref(), Some("EAP"));
        assert_eq!(k.1.strs("owners"), ["dave"]);
        assert!(!format!("{:?}", eap_prepared()).contains("pw\""));
    }

    #[test]
    fn failure_reasons() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let failed = "establishing CHILD_SA 'nsvpn' failed";
        let cases = [
            failure_reason(
                &prepared(),
                failed,
                &lines(&[
                    "parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]",
                    "received AUTHENTICATION_FAILED notify error",
                ]),
            ),
            failure_reason(
                &cert_prepared(),
                failed,
                &lines(&["received AUTHENTICATION_FAILED notify error"]),
            ),
            failure_reason(
                &cert_prepared(),
                failed,
                &lines(&["no trusted RSA public key found for 'vpn.example.com'"]),
            ),
            failure_reason(
                &eap_prepared(),
                failed,
                &lines(&["received EAP_FAILURE, EAP authentication failed"]),
            ),
            failure_reason(
                &eap_prepared(),
                failed,
                &lines(&[
                    "EAP-MS-CHAPv2 failed with error ERROR_AUTHENTICATION_FAILURE: '(null)'",
                    "EAP_MSCHAPV2 method failed",
                ]),
            ),
            failure_reason(
                &prepared(),
                failed,
                &lines(&["received NO_PROPOSAL_CHOSEN notify error"]),
            ),
            failure_reason(
                &prepared(),
                failed,
                &lines(&["received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built"]),
            ),
            failure_reason(
                &prepared(),
                failed,
                &lines(&[
                    "retransmit 3 of request with message ID 0",
                    "giving up after 3 retransmits",
                ]),
            ),
            failure_reason(
                &prepared(),
                "CHILD_SA 'nsvpn' not established after 2000ms",
                &lines(&["retransmit 1 of request with message ID 0"]),
            ),
            failure_reason(&prepared(), "something else", &[]),
        ];
        insta::assert_snapshot!(cases.join("\n"));
        // A successful authentication line is no reason.
        for ok in [
            "authentication of 'gw.lab' with pre-shared key successful",
            "EAP method EAP_MD5 succeeded, no MSK established",
            "authentication of 'carol@lab' (myself) with RSA_EMSA_PKCS1_SHA2_256 successful",
        ] {
            assert!(
                !failure_reason(&eap_prepared(), "x", &lines(&[ok])).starts_with("authentication"),
                "{ok}"
            );
        }
    }

    fn sa_event() -> Message {
        Message::new().section(
            CONN,
            Message::new()
                .kv("state", "ESTABLISHED")
                .kv("remote-host", "203.0.113.18")
                .kv("remote-id", "echo.lab")
                .kv("established", "12")
                .kv("encr-alg", "AES_CBC")
                .kv("encr-keysize", "128")
                .kv("integ-alg", "HMAC_SHA2_256_128")
                .kv("prf-alg", "PRF_HMAC_SHA2_256")
                .kv("dh-group", "MODP_3072")
                .list("local-vips", ["10.7.0.1"])
                .section(
                    "child-sas",
                    Message::new().section(
                        "nsvpn-3",
                        Message::new()
                            .kv("state", "INSTALLED")
                            .kv("uniqueid", "3")
                            .kv("encr-alg", "AES_CBC")
                            .kv("encr-keysize", "128")
                            .kv("integ-alg", "HMAC_SHA2_256_128")
                            .kv("install-time", "5")
                            .kv("rekey-time", "3000")
                            .kv("packets-in", "2")
                            .kv("packets-out", "4")
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

    /// What the supervisor looks at: while the IKE_SA is rekeyed, charon
    /// lists the old one (without children) and the new; while the
    /// CHILD_SA is rekeyed, the old one (REKEYING) carries the traffic.
    #[test]
    fn a_rekey_is_no_lost_sa() {
        let old_ike = Message::new().section(
            CONN,
            Message::new()
                .kv("state", "REKEYED")
                .section("child-sas", Message::new()),
        );
        let sa = sa_info(&[old_ike.clone(), sa_event()]).unwrap();
        assert_eq!(
            (sa.ike_state.as_str(), sa.child.map(|c| c.id)),
            ("ESTABLISHED", Some(3))
        );
        let rekeying = Message::new().section(
            CONN,
            Message::new().kv("state", "ESTABLISHED").section(
                "child-sas",
                Message::new()
                    .section(
                        "nsvpn-4",
                        Message::new().kv("state", "REKEYING").kv("uniqueid", "4"),
                    )
                    .section(
                        "nsvpn-5",
                        Message::new().kv("state", "CREATED").kv("uniqueid", "5"),
                    ),
            ),
        );
        let child = sa_info(&[rekeying]).unwrap().child.unwrap();
        assert_eq!((child.id, child.state.as_str()), (4, "REKEYING"));
        // An IKE_SA without a CHILD_SA (the gateway deleted it): lost.
        assert_eq!(sa_info(&[old_ike]).unwrap().child, None);
    }

    #[test]
    fn the_supervisors_record_says_why_and_how_often() {
        let r = reconnect::Record {
            since: 100,
            last_error: "charon did not connect: peer unreachable".into(),
            attempts: 3,
        };
        let c = r.reconnect();
        assert_eq!(c.since, 100);
        assert_eq!(
            c.describe(112),
            "reconnecting since 12 s ago, last error: charon did not connect: peer unreachable \
             (attempt 3)"
        );
        // Before the first attempt, it is the first.
        let first = reconnect::Record { attempts: 0, ..r };
        assert!(first.reconnect().describe(100).ends_with("(attempt 1)"));
    }
}
