//! Profiles: one TOML file per VPN, named after the file's stem.
//!
//! Every field is checked when the profile is loaded, and every error names
//! the profile, the file and the field, so that bad input is refused before
//! anything on the machine is touched. Loading reads the profile's own file
//! and nothing else: the files it names (wg-quick file, `.ovpn`, secrets)
//! are resolved here but only looked at by the back-end that reads them, as
//! root, when `up` prepares (`backend::prepare`). So users whom `[access]`
//! admits can `exec`, `status` and `list` a profile whose files are root's
//! alone.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;

use crate::backend::vpn::RawVpn;
pub use crate::backend::vpn::Vpn;
use crate::ipnet::{IpNet, Ipv4Net};
use crate::names::{self, VethAddrs};

/// The keys of a profile that belong above its first `[section]`.
const TOP_LEVEL_KEYS: &[&str] = &["description", "mtu", "idle_timeout"];

/// The range of the top-level `mtu`.
pub const MTU_MIN: u32 = 576;
pub const MTU_MAX: u32 = 9000;

pub const DEFAULT_DIR: &str = "/etc/nsvpn/profiles";
pub const ENV_DIR: &str = "NSVPN_PROFILES";

/// Where profiles are looked up: `--profiles DIR`, else `$NSVPN_PROFILES`,
/// else /etc/nsvpn/profiles.
pub fn profile_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    match std::env::var_os(ENV_DIR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: Option<String>,
    vpn: RawVpn,
    routes: Option<RawRoutes>,
    dns: Option<RawDns>,
    hosts: Option<BTreeMap<String, String>>,
    access: Option<RawAccess>,
    veth: Option<RawVeth>,
    split: Option<RawSplit>,
    mtu: Option<i64>,
    idle_timeout: Option<toml::Value>,
    forward: Option<RawForward>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    ports: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplit {
    internet: Option<bool>,
    direct: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoutes {
    include: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    servers: Option<Vec<String>>,
    search: Option<Vec<String>>,
    domains: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVeth {
    subnet: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub path: PathBuf,
    pub description: Option<String>,
    pub vpn: Vpn,
    /// `[routes] include`: replaces what the VPN provides.
    pub routes: Option<Vec<IpNet>>,
    /// `[dns] servers`: replaces what the VPN provides.
    pub dns_servers: Option<Vec<IpAddr>>,
    /// `[dns] search`: replaces what the VPN provides.
    pub dns_search: Option<Vec<String>>,
    pub hosts: Vec<(String, IpAddr)>,
    pub access: Access,
    pub veth: VethAddrs,
    /// `[split]`: a path to the host's network beside the VPN.
    pub split: Option<Split>,
    /// `mtu`: the tunnel device's MTU, over what the VPN says (every kind).
    pub mtu: Option<u32>,
    /// `[forward] ports`: forwards kept while the profile is up, as
    /// `nsvpn forward` takes them (checked when the profile loads).
    pub forwards: Vec<String>,
    /// `idle_timeout`: go down by itself once unused for this long.
    pub idle_timeout: Option<std::time::Duration>,
}

/// `[split]`, with `[dns] domains`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Split {
    /// Everything the VPN does not route goes out through the host.
    pub internet: bool,
    /// Prefixes that always go through the host, even when the VPN claims
    /// them.
    pub direct: Vec<IpNet>,
    /// `[dns] domains`: the names the VPN's servers answer; the rest go to
    /// the host's resolver. None: the VPN's own domains.
    pub domains: Option<Vec<String>>,
}

/// A TOML error on one line: where, which field, what (never the line's own
/// text, which the message does not need).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return msg;
    };
    let before = &text.as_bytes()[..span.start.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    let lines: Vec<&str> = text.lines().collect();
    let field = field_at(&lines, line - 1);
    // A top-level key written below a [section] belongs to that section in
    // TOML: say where it goes.
    let hint = match field.as_deref().and_then(|f| f.rsplit_once('.')) {
        Some((_, k)) if TOP_LEVEL_KEYS.contains(&k) && msg.starts_with("unknown field") => {
            format!(" (`{k}` is a top-level key: put it above the first [section])")
        }
        _ => String::new(),
    };
    let field = field.map(|f| format!(", field `{f}`")).unwrap_or_default();
    format!("line {line}, column {column}{field}: {msg}{hint}")
}

/// The dotted field a line of a profile sets (`access.users`), or the table a
/// header line opens.
fn field_at(lines: &[&str], index: usize) -> Option<String> {
    let header = |l: &str| {
        let t = l.trim();
        (t.starts_with('[') && t.ends_with(']'))
            .then(|| t.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    };
    let this = lines.get(index)?;
    if let Some(h) = header(this) {
        return Some(h);
    }
    let key = this.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() || !this.contains('=') {
        return None;
    }
    let table = lines[..index].iter().rev().find_map(|l| header(l));
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// A domain name: labels of ASCII letters, digits, '-' and '_', separated
/// by dots, each 1 to 63 bytes long, at most 253 bytes in all. The one check
/// for names in profiles and wg-quick files; wg-quick's `DNS` takes any such
/// name as a search domain.
pub fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// A host name as /etc/hosts and resolv.conf accept it: a domain name
/// whose labels do not start with '-'.
pub fn is_hostname(s: &str) -> bool {
    is_domain(s) && !s.split('.').any(|l| l.starts_with('-'))
}

fn is_account_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !s.starts_with('-')
}

/// Names of the profiles in `dir` (files `*.toml`), sorted.
pub fn list_names(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the profile directory {}: create it, or point --profiles or ${ENV_DIR} at yours",
            dir.display()
        )
    })?;
    let mut out = Vec::new();
    for e in rd {
        let e =
            e.with_context(|| format!("cannot read the profile directory {}", dir.display()))?;
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) == Some("toml")
            && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
        {
            out.push(stem.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `dir` has a profile file for `name` (valid or not).
pub fn exists(dir: &Path, name: &str) -> bool {
    dir.join(format!("{name}.toml")).exists()
}

/// The error for a name that is not a profile in `dir`, which lists the
/// `known` ones (a typo is the likely cause).
pub fn unknown(dir: &Path, name: &str, known: &[String]) -> anyhow::Error {
    let hint = if known.is_empty() {
        format!("there are no profiles in {}", dir.display())
    } else {
        format!("known profiles: {}", known.join(", "))
    };
    anyhow!(
        "no profile {name:?}: {} does not exist ({hint}; profiles are looked up in \
         --profiles DIR, else ${ENV_DIR}, else {DEFAULT_DIR})",
        dir.join(format!("{name}.toml")).display()
    )
}

/// Refuses a name that is neither a profile in `dir` nor, by `has_traces`,
/// the name of leftovers on this machine (those of a profile whose file was
/// deleted still count: they must stay removable): a typo must not pass
/// for a profile that is down.
pub fn require_known(dir: &Path, name: &str, has_traces: impl FnOnce() -> bool) -> Result<()> {
    if exists(dir, name) || has_traces() {
        Ok(())
    } else {
        Err(unknown(dir, name, &list_names(dir).unwrap_or_default()))
    }
}

impl Profile {
    /// Loads and checks the profile `name` from `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<Profile> {
        names::validate_profile_name(name)?;
        let path = dir.join(format!("{name}.toml"));
        if path.exists() {
            crate::trust::check(
                &path,
                &format!("profile {name:?}"),
                crate::trust::Role::Profile,
            )?;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(unknown(dir, name, &list_names(dir).unwrap_or_default()));
            }
            Err(e) => {
                return Err(
                    anyhow!(e).context(format!("profile {name:?}: cannot read {}", path.display()))
                );
            }
        };
        Self::parse(name, &path, &text)
    }

    /// Parses a profile's text (`path` is where it was read from). Never
    /// touches the files the profile names.
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<Profile> {
        let src = Source { name, path };
        let raw: RawProfile =
            toml::from_str(text).map_err(|e| anyhow!("{}: {}", src.at(), toml_error(text, &e)))?;
        let vpn = Vpn::parse(&src, raw.vpn)?;
        let routes = raw.routes.map(|r| src.routes(&r)).transpose()?;
        let (dns_servers, dns_search, dns_domains) = match raw.dns {
            None => (None, None, None),
            Some(d) => (
                d.servers.map(|s| src.dns_servers(&s)).transpose()?,
                d.search.map(|s| src.dns_search(s, "search")).transpose()?,
                d.domains
                    .map(|s| src.dns_search(s, "domains"))
                    .transpose()?,
            ),
        };
        let split = src.split(raw.split, dns_domains)?;
        let hosts = src.hosts(raw.hosts.unwrap_or_default())?;
        let access = match raw.access {
            None => Access::default(),
            Some(a) => src.access(a)?,
        };
        let veth = match raw.veth {
            None => VethAddrs::for_profile(name),
            Some(v) => src.veth(&v)?,
        };
        src.description(raw.description.as_deref())?;
        let mtu = raw.mtu.map(|m| src.mtu(m)).transpose()?;
        let idle_timeout = raw.idle_timeout.map(|v| src.idle_timeout(&v)).transpose()?;
        let forwards = match raw.forward {
            None => Vec::new(),
            Some(f) => src.forwards(f.ports)?,
        };

        Ok(Profile {
            name: name.to_string(),
            path: path.to_path_buf(),
            description: raw.description,
            vpn,
            routes,
            dns_servers,
            dns_search,
            hosts,
            access,
            veth,
            split,
            mtu,
            forwards,
            idle_timeout,
        })
    }
}

/// A profile file being parsed: what its errors name, and where the paths
/// it holds start from. One method per section of the file (`[vpn]` is
/// read by its kind, in `backend/`).
pub(crate) struct Source<'a> {
    name: &'a str,
    path: &'a Path,
}

impl Source<'_> {
    /// What every error starts with: the profile and its file.
    fn at(&self) -> String {
        format!("profile {:?} ({})", self.name, self.path.display())
    }

    /// An error about the field `f` (dotted, as in `vpn.config`).
    pub(crate) fn field(&self, f: &str, msg: String) -> anyhow::Error {
        anyhow!("{}: field `{f}`: {msg}", self.at())
    }

    /// The path `v` given in field `f`, relative to the profile's directory
    /// unless absolute. Only resolved, never looked at: the file may be
    /// root's alone, and the caller a user who only enters the profile
    /// (`backend::check_files` checks it, as root, before `up` reads it).
    pub(crate) fn file(&self, f: &str, v: &str) -> Result<PathBuf> {
        if v.is_empty() {
            return Err(self.field(f, "is empty".into()));
        }
        let base = self.path.parent().unwrap_or(Path::new("/"));
        Ok(base.join(v))
    }

    /// `[routes]`: `include`, each network truncated to its prefix.
    fn routes(&self, r: &RawRoutes) -> Result<Vec<IpNet>> {
        let mut out = Vec::new();
        for (i, s) in r.include.iter().enumerate() {
            let n: IpNet = s
                .parse()
                .map_err(|e| self.field(&format!("routes.include[{i}]"), format!("{s:?}: {e}")))?;
            out.push(n.trunc());
        }
        Ok(out)
    }

    /// `[dns] servers`: addresses.
    fn dns_servers(&self, servers: &[String]) -> Result<Vec<IpAddr>> {
        servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<IpAddr>().map_err(|_| {
                    self.field(
                        &format!("dns.servers[{i}]"),
                        format!("{s:?} is not an IP address"),
                    )
                })
            })
            .collect()
    }

    /// `[dns] search` or `domains`: domain names.
    fn dns_search(&self, search: Vec<String>, key: &str) -> Result<Vec<String>> {
        for (i, s) in search.iter().enumerate() {
            if !is_hostname(s) {
                return Err(self.field(
                    &format!("dns.{key}[{i}]"),
                    format!("{s:?} is not a domain name"),
                ));
            }
        }
        Ok(search)
    }

    /// `[split]`: `internet` and `direct` (prefixes, truncated), with
    /// `[dns] domains`, which only a split profile uses.
    fn split(&self, raw: Option<RawSplit>, domains: Option<Vec<String>>) -> Result<Option<Split>> {
        let Some(raw) = raw else {
            if domains.is_some() {
                return Err(self.field(
                    "dns.domains",
                    "splits DNS, which needs a [split] section (internet = true, or direct = [...])"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let mut direct = Vec::new();
        for (i, s) in raw.direct.unwrap_or_default().iter().enumerate() {
            let n: IpNet = s
                .parse()
                .map_err(|e| self.field(&format!("split.direct[{i}]"), format!("{s:?}: {e}")))?;
            if n.addr().is_ipv6() {
                return Err(self.field(
                    &format!("split.direct[{i}]"),
                    format!("{s:?}: the host's network is reached over IPv4 only"),
                ));
            }
            direct.push(n.trunc());
        }
        let internet = raw.internet.unwrap_or(false);
        if !internet && direct.is_empty() {
            return Err(self.field(
                "split",
                "asks for nothing: set internet = true, or direct = [\"192.168.1.0/24\", ...]"
                    .into(),
            ));
        }
        Ok(Some(Split {
            internet,
            direct,
            domains,
        }))
    }

    /// `[forward] ports`: each as `nsvpn forward` takes it; two may not
    /// listen on the same address.
    fn forwards(&self, ports: Vec<String>) -> Result<Vec<String>> {
        if ports.is_empty() {
            return Err(self.field(
                "forward.ports",
                "is empty: list the forwards to keep, e.g. [\"15432:db.internal:5432\"], or \
                 remove [forward]"
                    .into(),
            ));
        }
        for (i, t) in ports.iter().enumerate() {
            t.parse::<crate::forward::Spec>()
                .map_err(|e| self.field(&format!("forward.ports[{i}]"), format!("{e:#}")))?;
        }
        crate::forward::parse_all(&ports)
            .map_err(|e| self.field("forward.ports", format!("{e:#}")))?;
        Ok(ports)
    }

    /// `[hosts]`: name = address pairs, in the order of their names.
    fn hosts(&self, raw: BTreeMap<String, String>) -> Result<Vec<(String, IpAddr)>> {
        let mut hosts = Vec::new();
        for (h, a) in raw {
            if !is_hostname(&h) {
                return Err(self.field(&format!("hosts.{h:?}"), "is not a host name".into()));
            }
            let ip = a.parse::<IpAddr>().map_err(|_| {
                self.field(
                    &format!("hosts.{h:?}"),
                    format!("{a:?} is not an IP address"),
                )
            })?;
            hosts.push((h, ip));
        }
        Ok(hosts)
    }

    /// `[access]`: the `users` and `groups` who may use the profile.
    fn access(&self, a: RawAccess) -> Result<Access> {
        for (i, u) in a.users.iter().enumerate() {
            if !is_account_name(u) {
                return Err(self.field(
                    &format!("access.users[{i}]"),
                    format!("{u:?} is not a user name"),
                ));
            }
        }
        for (i, g) in a.groups.iter().enumerate() {
            if !is_account_name(g) {
                return Err(self.field(
                    &format!("access.groups[{i}]"),
                    format!("{g:?} is not a group name"),
                ));
            }
        }
        Ok(Access {
            users: a.users,
            groups: a.groups,
        })
    }

    /// `[veth]`: the `subnet` that replaces the profile's default one.
    fn veth(&self, v: &RawVeth) -> Result<VethAddrs> {
        let subnet: Ipv4Net = v
            .subnet
            .parse()
            .map_err(|e| self.field("veth.subnet", format!("{:?}: {e}", v.subnet)))?;
        VethAddrs::from_subnet(subnet).map_err(|e| self.field("veth.subnet", e.to_string()))
    }

    /// The top-level `mtu`: what a tunnel device can carry. IPv4 needs at
    /// least 576 (and IPv6 1280, which the kernel turns off below it);
    /// 9000 is a jumbo frame, beyond anything a VPN's path carries.
    fn mtu(&self, m: i64) -> Result<u32> {
        match u32::try_from(m) {
            Ok(v) if (MTU_MIN..=MTU_MAX).contains(&v) => Ok(v),
            _ => Err(self.field(
                "mtu",
                format!(
                    "{m} is not a usable MTU: give the tunnel's packet size in bytes, \
                     {MTU_MIN} to {MTU_MAX} (`nsvpn doctor <profile>` measures what the path carries)"
                ),
            )),
        }
    }

    /// The top-level `idle_timeout`: a duration in a string ("15m").
    fn idle_timeout(&self, v: &toml::Value) -> Result<std::time::Duration> {
        let why = match v {
            toml::Value::String(s) => crate::idle::parse_duration(s),
            toml::Value::Integer(n) => Err(format!(
                "{n} has no unit: give a duration in a string, e.g. \"{n}s\" or \"{n}m\""
            )),
            other => Err(format!(
                "is a {}: give a duration in a string, e.g. \"15m\"",
                other.type_str()
            )),
        };
        why.map_err(|e| {
            self.field(
                "idle_timeout",
                format!("{e} (how long the profile may stay unused before it goes down by itself)"),
            )
        })
    }

    /// The top-level `description`, which is shown as is: no control
    /// characters.
    fn description(&self, d: Option<&str>) -> Result<()> {
        if let Some(d) = d
            && d.chars().any(|c| c.is_control())
        {
            return Err(self.field("description", "has control characters".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile> {
        Profile::parse("acme", Path::new("/etc/nsvpn/profiles/acme.toml"), text)
    }

    #[test]
    fn full_wireguard_profile() {
        let p = parse(
            r#"
description = "ACME customer network"
mtu = 1380
idle_timeout = "15m"
[vpn]
kind = "wireguard"
config = "/etc/wireguard/acme.conf"
userspace = true
[routes]
include = ["10.20.0.0/16", "10.30.5.1/24"]
[dns]
servers = ["10.20.0.53"]
search = ["acme.internal"]
[hosts]
"db.acme.internal" = "10.20.1.5"
[access]
users = ["alice"]
groups = ["consultants"]
"#,
        )
        .unwrap();
        insta::assert_debug_snapshot!(p);
    }

    #[test]
    fn a_split_profile() {
        let p = parse("[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[dns]\ndomains = [\"corp.internal\"]\n[split]\ninternet = true\ndirect = [\"192.168.1.7/24\"]\n").unwrap();
        assert_eq!(
            p.split,
            Some(Split {
                internet: true,
                direct: vec!["192.168.1.0/24".parse().unwrap()],
                domains: Some(vec!["corp.internal".into()]),
            })
        );
    }

    #[test]
    fn other_kinds_and_relative_paths() {
        let ovpn = parse("[vpn]\nkind = \"openvpn\"\nconfig = \"corp.ovpn\"\nauth_file = \"../secrets/corp\"\n[veth]\nsubnet = \"10.250.0.0/30\"\n").unwrap();
        let oc = parse("[vpn]\nkind = \"openconnect\"\nserver = \"vpn.example\"\nprotocol = \"gp\"\nuser = \"alice\"\nargs = [\"--servercert\", \"pin-sha256:x\"]\n").unwrap();
        insta::assert_debug_snapshot!((ovpn.vpn, ovpn.veth, oc.vpn));
    }

    #[test]
    fn kept_forwards() {
        let p = parse("[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[forward]\nports = [\"15432:db.internal:5432\", \"[::1]:8443:10.20.1.8:443\"]\n").unwrap();
        assert_eq!(
            p.forwards,
            vec!["15432:db.internal:5432", "[::1]:8443:10.20.1.8:443"]
        );
        assert!(parse_ok_without_forward().forwards.is_empty());
    }

    fn parse_ok_without_forward() -> Profile {
        parse("[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n").unwrap()
    }

    #[test]
    fn bad_profiles_name_the_field() {
        let cases = [
            (
                "unknown top-level key",
                "colour = 1\n[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n",
            ),
            (
                "typo in a section",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[dns]\nserver = [\"1.1.1.1\"]\n",
            ),
            ("bad kind", "[vpn]\nkind = \"ipsec\"\n"),
            ("missing config", "[vpn]\nkind = \"wireguard\"\n"),
            (
                "wrong kind's field",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\nserver = \"x\"\n",
            ),
            (
                "bad cidr",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[routes]\ninclude = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
            ),
            (
                "bad dns server",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[dns]\nservers = [\"ns1\"]\n",
            ),
            (
                "bad search",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[dns]\nsearch = [\"a b\"]\n",
            ),
            (
                "bad host",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[hosts]\n\"db\" = \"10.0.0.300\"\n",
            ),
            (
                "bad veth",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[veth]\nsubnet = \"10.0.0.0/31\"\n",
            ),
            (
                "bad user",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[access]\nusers = [\"../root\"]\n",
            ),
            ("not toml", "[vpn\n"),
            (
                "split asking for nothing",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[split]\ninternet = false\n",
            ),
            (
                "bad direct prefix",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[split]\ndirect = [\"192.168.1.0/33\"]\n",
            ),
            (
                "IPv6 direct prefix",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[split]\ndirect = [\"fd00::/8\"]\n",
            ),
            (
                "split domains without [split]",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[dns]\ndomains = [\"corp.internal\"]\n",
            ),
            (
                "bad split domain",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[dns]\ndomains = [\"a b\"]\n[split]\ninternet = true\n",
            ),
            (
                "mtu too small",
                "mtu = 200\n[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n",
            ),
            (
                "mtu negative",
                "mtu = -1\n[vpn]\nkind = \"openvpn\"\nconfig = \"a\"\n",
            ),
            (
                "mtu not a number",
                "mtu = \"1380\"\n[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n",
            ),
            (
                "mtu under a section",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\nmtu = 1380\n",
            ),
            (
                "idle_timeout without a unit",
                "idle_timeout = 15\n[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n",
            ),
            (
                "idle_timeout with a unit it does not know",
                "idle_timeout = \"15min\"\n[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n",
            ),
            (
                "idle_timeout zero",
                "idle_timeout = \"0m\"\n[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n",
            ),
            (
                "idle_timeout under a section",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\nidle_timeout = \"15m\"\n",
            ),
            (
                "bad forward",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[forward]\nports = [\"15432:db.internal:5432\", \"15433:db.internal\"]\n",
            ),
            (
                "two forwards on one port",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[forward]\nports = [\"15432:db.internal:5432\", \"127.0.0.1:15432:10.20.1.6:5432\"]\n",
            ),
            (
                "no forwards",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[forward]\nports = []\n",
            ),
            (
                "forward typo",
                "[vpn]\nkind = \"wireguard\"\nconfig = \"a\"\n[forward]\nport = [\"15432:db.internal:5432\"]\n",
            ),
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|(what, text)| format!("{what}:\n{}\n", parse(text).unwrap_err()))
            .collect();
        insta::assert_snapshot!(out.join("\n"));
    }

    /// Loading reads the profile's own file only: a file it names that is
    /// missing (or that the caller may not even see, in a root-only
    /// directory) does not keep it from loading. `up` refuses it, naming the
    /// field (`backend::check_files`).
    #[test]
    fn loading_never_looks_at_the_files_a_profile_names() {
        let dir = std::env::temp_dir().join(format!("nsvpn-profile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("x.toml"),
            "[vpn]\nkind = \"wireguard\"\nconfig = \"nope.conf\"\n",
        )
        .unwrap();
        let loaded = Profile::load(&dir, "x");
        let missing = Profile::load(&dir, "y").unwrap_err().to_string();
        let bad_name = Profile::load(&dir, "../x").unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        let p = loaded.unwrap();
        assert_eq!(
            p.vpn,
            Vpn::WireGuard {
                config: dir.join("nope.conf"),
                userspace: false
            }
        );
        assert!(missing.contains("known profiles: x"), "{missing}");
        assert!(bad_name.contains("not allowed"), "{bad_name}");
    }

    #[test]
    fn a_name_is_known_by_its_file_or_its_leftovers() {
        let dir = std::env::temp_dir().join(format!("nsvpn-known-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.toml"), "not even valid").unwrap();
        let file = require_known(&dir, "x", || panic!("the file is enough"));
        let leftovers = require_known(&dir, "gone", || true);
        let typo = require_known(&dir, "y", || false);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(file.is_ok() && leftovers.is_ok());
        let typo = typo.unwrap_err().to_string();
        assert!(
            typo.contains("no profile \"y\"") && typo.contains("known profiles: x"),
            "{typo}"
        );
    }

    #[test]
    fn an_unknown_name_lists_the_known_profiles() {
        let dir = Path::new("/etc/nsvpn/profiles");
        let known = ["acme".to_string(), "corp".to_string()];
        insta::assert_snapshot!(format!(
            "nsvpn: error: {}\nnsvpn: error: {}",
            unknown(dir, "acne", &known),
            unknown(dir, "acne", &[])
        ));
    }

    /// wg-quick's `DNS` takes a search domain that a profile's `[dns]`
    /// refuses (a label starting with '-'); the two checks share the rest.
    #[test]
    fn a_host_name_is_a_domain_with_no_label_starting_with_a_hyphen() {
        for both in ["acme.internal", "a_b.c-d", "x", &"a".repeat(63)] {
            assert!(is_domain(both) && is_hostname(both), "{both:?}");
        }
        for domain_only in ["-corp", "a.-b"] {
            assert!(is_domain(domain_only) && !is_hostname(domain_only));
        }
        for neither in ["", "a..b", "a b", ".a", &"a".repeat(64), "ä"] {
            assert!(!is_domain(neither) && !is_hostname(neither), "{neither:?}");
        }
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The examples in the repository's profiles/ must stay valid.
    #[test]
    fn repository_examples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let names = list_names(&dir).unwrap();
        assert_eq!(
            names,
            [
                "acme",
                "corp",
                "customer",
                "customer-ipsec",
                "customer-ipsec-cert",
                "customer-ipsec-eap",
                "customer-ipsec-swanctl",
                "on-demand"
            ],
            "one example per kind (IPsec: one per way to authenticate, and a swanctl.conf), and one on demand"
        );
        for n in names {
            let text = std::fs::read_to_string(dir.join(format!("{n}.toml"))).unwrap();
            let p = Profile::parse(&n, &dir.join(format!("{n}.toml")), &text)
                .unwrap_or_else(|e| panic!("profiles/{n}.toml: {e:#}"));
            crate::backend::check_arguments(&p.vpn)
                .unwrap_or_else(|e| panic!("profiles/{n}.toml: {e:?}"));
        }
    }
}
