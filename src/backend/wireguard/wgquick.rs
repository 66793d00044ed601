//! The wg-quick configuration format, read as is.
//!
//! Acted on: `[Interface]` PrivateKey, Address, DNS, MTU, ListenPort;
//! `[Peer]` PublicKey, PresharedKey, Endpoint, AllowedIPs, PersistentKeepalive.
//!
//! Never acted on:
//! - PreUp, PostUp, PreDown, PostDown run shell commands on the host: a file
//!   that has them is refused.
//! - Table, FwMark and SaveConfig steer or rewrite the host (its routing
//!   tables, its policy routing, the file itself): they are ignored with a
//!   warning, since the routes inside the namespace come from AllowedIPs or
//!   the profile's `[routes]`.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::ipnet::IpNet;
use crate::profile::is_domain;

/// A 32-byte WireGuard key. Its Debug form never shows the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn from_base64(s: &str) -> Result<Key, String> {
        let bytes = B64.decode(s.trim()).map_err(|_| {
            "is not valid base64 (a key is 44 characters ending in '=')".to_string()
        })?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| format!("decodes to {} bytes; a key has 32", v.len()))?;
        Ok(Key(arr))
    }
    pub fn to_base64(self) -> String {
        B64.encode(self.0)
    }
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
    pub fn from_hex(s: &str) -> Option<Key> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Key(out))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// `host:port`, `[v6]:port`. A name is resolved at `up`, in the host namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub public_key: Key,
    pub preshared_key: Option<Key>,
    pub endpoint: Option<Endpoint>,
    pub allowed_ips: Vec<IpNet>,
    pub persistent_keepalive: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgQuick {
    pub private_key: Key,
    pub addresses: Vec<IpNet>,
    pub dns_servers: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub mtu: Option<u32>,
    pub listen_port: Option<u16>,
    pub peers: Vec<Peer>,
    /// Keys that were present but are never acted on.
    pub warnings: Vec<String>,
}

/// A key or section name as errors show it: as written when it looks like
/// one, else not at all (a mangled line may hold a secret).
fn shown(name: &str) -> String {
    let plausible = name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '[' | ']' | '_' | '-' | ' '));
    if plausible {
        name.to_string()
    } else {
        "(not shown: it does not look like a name and may be secret)".to_string()
    }
}

/// A parse error: the line (1-based, 0 for the whole file) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

#[derive(Default)]
struct PeerDraft {
    line: usize,
    public_key: Option<Key>,
    preshared_key: Option<Key>,
    endpoint: Option<Endpoint>,
    allowed_ips: Vec<IpNet>,
    persistent_keepalive: Option<u16>,
}

#[derive(Default)]
enum Section {
    #[default]
    None,
    Interface,
    Peer,
}

fn parse_endpoint(v: &str) -> Result<Endpoint, String> {
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("{v:?} is not [address]:port"))?;
        (h.to_string(), p)
    } else {
        let (h, p) = v
            .rsplit_once(':')
            .ok_or_else(|| format!("{v:?} has no port (write host:port)"))?;
        if h.contains(':') {
            return Err(format!("{v:?}: write an IPv6 endpoint as [address]:port"));
        }
        (h.to_string(), p)
    };
    if host.is_empty() {
        return Err(format!("{v:?} has no host"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
    {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if port == 0 {
        return Err("port 0 is not a valid endpoint port".into());
    }
    Ok(Endpoint { host, port })
}

/// Why a key wg-quick acts on is ignored: what it does on the host, and why
/// nsvpn has no use for it.
fn ignored(lkey: &str) -> &'static str {
    match lkey {
        "table" => {
            "it steers the host, and routes inside the namespace come from AllowedIPs or the \
             profile's [routes]"
        }
        "fwmark" => {
            "it marks the tunnel's encrypted packets so that the host's policy routing can keep \
             them out of the tunnel; nsvpn needs no mark: the tunnel's socket stays in the host's \
             namespace and its routes exist only in the profile's"
        }
        _ => {
            "it makes wg-quick write the interface's state back into this file when it goes down; \
             nsvpn reads the file as is and never writes it"
        }
    }
}

/// The one error for a file with hook commands: every such line, by number
/// and key (never its command, which may hold a secret).
fn hook_refusal(hooks: &[(usize, String)]) -> String {
    let lines: Vec<String> = hooks
        .iter()
        .map(|(n, key)| format!("  line {n}: {key}"))
        .collect();
    format!(
        "nsvpn never runs wg-quick hook commands (PreUp, PostUp, PreDown, PostDown), which would \
         act on the host; remove {} (or keep a copy of the file without {} for nsvpn):\n{}",
        if hooks.len() == 1 {
            "this line"
        } else {
            "these lines"
        },
        if hooks.len() == 1 { "it" } else { "them" },
        lines.join("\n")
    )
}

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Parses the text of a wg-quick file. A UTF-8 byte order mark (Windows
/// Notepad writes one) is skipped; CRLF line ends are read as LF.
pub fn parse(text: &str) -> Result<WgQuick, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut draft = Draft::default();
    for (i, raw) in text.lines().enumerate() {
        draft.read_line(i + 1, raw)?;
    }
    draft.finish()
}

/// One line of a wg-quick file, comments and surrounding blanks removed.
enum Line<'a> {
    /// Nothing left: an empty or comment line.
    Blank,
    /// A section header such as `[Peer]`, as written.
    Header(&'a str),
    /// `Key = Value`, both trimmed.
    Setting(&'a str, &'a str),
}

impl<'a> Line<'a> {
    /// Classifies a line; the error is for a line that is none of the three.
    fn classify(raw: &'a str) -> Result<Line<'a>, String> {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            return Ok(Line::Blank);
        }
        if line.starts_with('[') {
            return Ok(Line::Header(line));
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            // The line itself is not repeated: it may hold a secret.
            "is not of the form Key = Value (its text is not shown: it may be secret)".to_string()
        })?;
        Ok(Line::Setting(key.trim(), value.trim()))
    }
}

/// A key's value read as a WireGuard key; the error follows the key's name.
fn key_value(value: &str) -> Result<Key, String> {
    Key::from_base64(value).map_err(|e| format!("the key {e}"))
}

/// What has been read of a wg-quick file so far.
#[derive(Default)]
struct Draft {
    section: Section,
    seen_interface: bool,
    private_key: Option<Key>,
    addresses: Vec<IpNet>,
    dns_servers: Vec<IpAddr>,
    dns_search: Vec<String>,
    mtu: Option<u32>,
    listen_port: Option<u16>,
    peers: Vec<PeerDraft>,
    warnings: Vec<String>,
    /// (line, key) of every hook line: all are named in one error.
    hooks: Vec<(usize, String)>,
}

impl Draft {
    /// Reads line `lineno` (1-based) of the file.
    fn read_line(&mut self, lineno: usize, raw: &str) -> Result<(), ParseError> {
        let err = |message: String| ParseError {
            line: lineno,
            message,
        };
        match Line::classify(raw).map_err(err)? {
            Line::Blank => Ok(()),
            Line::Header(header) => self.open_section(lineno, header).map_err(err),
            Line::Setting(key, value) => self.setting(lineno, key, value).map_err(err),
        }
    }

    /// A section header on line `lineno`: `[Interface]` (once) or `[Peer]`,
    /// in any case.
    fn open_section(&mut self, lineno: usize, header: &str) -> Result<(), String> {
        match header.to_ascii_lowercase().as_str() {
            "[interface]" => {
                if self.seen_interface {
                    return Err("a second [Interface] section".into());
                }
                self.seen_interface = true;
                self.section = Section::Interface;
            }
            "[peer]" => {
                self.section = Section::Peer;
                self.peers.push(PeerDraft {
                    line: lineno,
                    ..Default::default()
                });
            }
            _ => return Err(format!("unknown section {}", shown(header))),
        }
        Ok(())
    }

    /// `key = value` on line `lineno`, in the section it belongs to.
    fn setting(&mut self, lineno: usize, key: &str, value: &str) -> Result<(), String> {
        match self.section {
            Section::None => Err(format!(
                "{key} comes before any [Interface] or [Peer] section"
            )),
            Section::Interface => self.interface_key(lineno, key, value),
            Section::Peer => self
                .peers
                .last_mut()
                .expect("a [Peer] section was opened")
                .set(key, value),
        }
    }

    /// A key of `[Interface]`: the ones acted on are kept, hooks are noted
    /// for the one refusal, and the ignored ones warned about.
    fn interface_key(&mut self, lineno: usize, key: &str, value: &str) -> Result<(), String> {
        let lkey = key.to_ascii_lowercase();
        let bad = |what: String| format!("{key}: {what}");
        match lkey.as_str() {
            "privatekey" => self.private_key = Some(key_value(value).map_err(bad)?),
            "address" => {
                for a in list(value) {
                    self.addresses.push(a.parse::<IpNet>().map_err(bad)?);
                }
            }
            "dns" => {
                for d in list(value) {
                    self.dns_entry(d).map_err(bad)?;
                }
            }
            "mtu" => {
                let m: u32 = value
                    .parse()
                    .map_err(|_| bad(format!("{value:?} is not a number")))?;
                if !(576..=65535).contains(&m) {
                    return Err(bad(format!("{m} is outside 576..65535")));
                }
                self.mtu = Some(m);
            }
            "listenport" => {
                self.listen_port = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("{value:?} is not a port number")))?,
                );
            }
            "preup" | "postup" | "predown" | "postdown" => {
                self.hooks.push((lineno, key.to_string()))
            }
            "table" | "fwmark" | "saveconfig" => {
                self.warnings.push(format!(
                    "line {lineno}: {key} is ignored: {}",
                    ignored(&lkey)
                ));
            }
            _ => return Err(format!("unknown key {} in [Interface]", shown(key))),
        }
        Ok(())
    }

    /// One entry of `DNS`: a server's address, else a search domain.
    fn dns_entry(&mut self, d: &str) -> Result<(), String> {
        if let Ok(ip) = d.parse::<IpAddr>() {
            self.dns_servers.push(ip);
        } else if is_domain(d) {
            self.dns_search.push(d.to_string());
        } else {
            return Err(format!("{d:?} is neither an address nor a search domain"));
        }
        Ok(())
    }

    /// The checks on the file as a whole, once every line is read: hooks
    /// first, then what a working tunnel needs.
    fn finish(self) -> Result<WgQuick, ParseError> {
        let whole = |message: &str| ParseError {
            line: 0,
            message: message.to_string(),
        };
        if !self.hooks.is_empty() {
            return Err(whole(&hook_refusal(&self.hooks)));
        }
        if !self.seen_interface {
            return Err(whole("there is no [Interface] section"));
        }
        let private_key = self
            .private_key
            .ok_or_else(|| whole("[Interface] has no PrivateKey"))?;
        if self.addresses.is_empty() {
            return Err(whole("[Interface] has no Address"));
        }
        if self.peers.is_empty() {
            return Err(whole("there is no [Peer] section"));
        }
        let mut peers = Vec::new();
        for d in self.peers {
            let peer = d.finish(&peers)?;
            peers.push(peer);
        }
        Ok(WgQuick {
            private_key,
            addresses: self.addresses,
            dns_servers: self.dns_servers,
            dns_search: self.dns_search,
            mtu: self.mtu,
            listen_port: self.listen_port,
            peers,
            warnings: self.warnings,
        })
    }
}

impl PeerDraft {
    /// A key of this `[Peer]`.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: String| format!("{key}: {what}");
        match key.to_ascii_lowercase().as_str() {
            "publickey" => self.public_key = Some(key_value(value).map_err(bad)?),
            "presharedkey" => self.preshared_key = Some(key_value(value).map_err(bad)?),
            "endpoint" => self.endpoint = Some(parse_endpoint(value).map_err(bad)?),
            "allowedips" => {
                for a in list(value) {
                    self.allowed_ips
                        .push(a.parse::<IpNet>().map_err(bad)?.trunc());
                }
            }
            "persistentkeepalive" => {
                self.persistent_keepalive = if value.eq_ignore_ascii_case("off") {
                    None
                } else {
                    let k: u16 = value.parse().map_err(|_| {
                        bad(format!("{value:?} is not a number of seconds or \"off\""))
                    })?;
                    (k > 0).then_some(k)
                };
            }
            _ => return Err(format!("unknown key {} in [Peer]", shown(key))),
        }
        Ok(())
    }

    /// The finished peer: it needs a PublicKey that no `earlier` peer has.
    fn finish(self, earlier: &[Peer]) -> Result<Peer, ParseError> {
        let public_key = self.public_key.ok_or_else(|| ParseError {
            line: self.line,
            message: "this [Peer] has no PublicKey".into(),
        })?;
        if earlier.iter().any(|p| p.public_key == public_key) {
            return Err(ParseError {
                line: self.line,
                message: "two [Peer] sections have the same PublicKey".into(),
            });
        }
        Ok(Peer {
            public_key,
            preshared_key: self.preshared_key,
            endpoint: self.endpoint,
            allowed_ips: self.allowed_ips,
            persistent_keepalive: self.persistent_keepalive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const K2: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const K3: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

    #[test]
    fn full_file() {
        let text = format!(
            "# corp\n[Interface]\nPrivateKey = {K1}\nAddress = 10.99.0.2/32, fd99::2/128\n\
             Address = 10.98.0.2/24\nDNS = 10.20.0.53, fd20::53, corp.internal\nMTU = 1380\n\
             ListenPort = 51000\nTable = off\n\n[Peer]\nPublicKey = {K2}\nPresharedKey = {K3}\n\
             Endpoint = vpn.example.com:51820\nAllowedIPs = 10.20.0.0/16, 10.30.1.7/16\n\
             PersistentKeepalive = 25\n\n[peer]\npublickey = {K3}\nendpoint = [2001:db8::1]:51820\n\
             allowedips = ::/0\npersistentkeepalive = off\n"
        );
        let wg = parse(&text).unwrap();
        insta::assert_debug_snapshot!(wg);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let cases = [
            ("no_interface", format!("[Peer]\nPublicKey = {K2}\n")),
            (
                "postup",
                format!("[Interface]\nPrivateKey = {K1}\nPostUp = iptables -F\n"),
            ),
            ("bad_key", "[Interface]\nPrivateKey = abc\n".to_string()),
            (
                "bad_cidr",
                format!("[Interface]\nPrivateKey = {K1}\nAddress = 10.0.0.1/40\n"),
            ),
            (
                "unknown",
                format!("[Interface]\nPrivateKey = {K1}\nColour = blue\n"),
            ),
            (
                "no_port",
                format!(
                    "[Interface]\nPrivateKey = {K1}\nAddress = 10.0.0.1/32\n[Peer]\nPublicKey = {K2}\nEndpoint = host\n"
                ),
            ),
            (
                "peerless",
                format!("[Interface]\nPrivateKey = {K1}\nAddress = 10.0.0.1/32\n"),
            ),
            (
                "no_pubkey",
                format!(
                    "[Interface]\nPrivateKey = {K1}\nAddress = 10.0.0.1/32\n[Peer]\nAllowedIPs = 0.0.0.0/0\n"
                ),
            ),
            (
                "dup_peer",
                format!(
                    "[Interface]\nPrivateKey = {K1}\nAddress = 10.0.0.1/32\n[Peer]\nPublicKey = {K2}\n[Peer]\nPublicKey = {K2}\n"
                ),
            ),
            (
                "bad_dns",
                format!("[Interface]\nPrivateKey = {K1}\nDNS = not a domain\n"),
            ),
            (
                "outside",
                format!("Address = 10.0.0.1/32\n[Interface]\nPrivateKey = {K1}\n"),
            ),
        ];
        let rendered: Vec<String> = cases
            .iter()
            .map(|(name, text)| format!("{name}: {}", parse(text).unwrap_err()))
            .collect();
        insta::assert_snapshot!(rendered.join("\n"));
    }

    /// A file saved by Windows Notepad: a UTF-8 byte order mark before
    /// `[Interface]`, and CRLF line ends.
    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_are_read() {
        let unix = format!(
            "[Interface]\nPrivateKey = {K1}\nAddress = 10.0.0.2/32\n[Peer]\nPublicKey = {K2}\n\
             AllowedIPs = 10.20.0.0/16\n"
        );
        let want = parse(&unix).unwrap();
        let crlf = unix.replace('\n', "\r\n");
        assert_eq!(parse(&crlf), Ok(want.clone()));
        assert_eq!(parse(&format!("\u{feff}{unix}")), Ok(want.clone()));
        assert_eq!(parse(&format!("\u{feff}{crlf}")), Ok(want));
        // Errors still count lines from the first.
        let bad = format!("\u{feff}[Interface]\r\nPrivateKey = {K1}\r\nMTU = big\r\n");
        assert_eq!(parse(&bad).unwrap_err().line, 3);
    }

    /// Every hook line is named in one error, as `.ovpn` refusals are, and
    /// the hooks come before errors about the file as a whole.
    #[test]
    fn every_hook_line_is_named_at_once() {
        let text = format!(
            "[Interface]\nPrivateKey = {K1}\nPreUp = iptables -F\nAddress = 10.0.0.2/32\n\
             PostUp = wg set %i private-key /etc/wireguard/secret\npredown = true\n\
             PostDown = iptables -F\n"
        );
        let err = parse(&text).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        insta::assert_snapshot!(err.to_string());
    }

    /// Table, FwMark and SaveConfig each say what they do and why nsvpn
    /// does without.
    #[test]
    fn ignored_keys_say_what_they_do() {
        let text = format!(
            "[Interface]\nPrivateKey = {K1}\nAddress = 10.0.0.2/32\nTable = off\nFwMark = 0xca6c\n\
             SaveConfig = true\n[Peer]\nPublicKey = {K2}\n"
        );
        insta::assert_snapshot!(parse(&text).unwrap().warnings.join("\n"));
    }

    #[test]
    fn keys_round_trip_and_hide() {
        let k = Key::from_base64(K1).unwrap();
        assert_eq!(k.to_base64(), K1);
        assert_eq!(Key::from_hex(&k.to_hex()), Some(k));
        assert_eq!(format!("{k:?}"), "Key(..)");
        assert_eq!(Key::from_hex("zz"), None);
    }
}
