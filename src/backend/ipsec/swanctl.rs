//! A `swanctl.conf`-style connection file, used as it is (`config = "..."`
//! in an IPsec profile): read the way strongSwan's settings parser reads
//! it, checked against an allow-list, and sent to the profile's charon
//! over VICI (`load-conn`, `load-shared`, `load-key`) as `swanctl
//! --load-all` would, with the settings nsvpn forces for the namespace.
//!
//! The syntax (strongSwan's `settings_lexer.l`/`settings_parser.y`, 5.9):
//! `name { ... }` sections, `key = value` settings whose value runs to the
//! end of the line, a `#`, or a `}` (words joined by one space; "..."
//! quotes with `\n`, `\t`, `\"`, `\\` escapes and may span lines), `#`
//! comments, CR before LF ignored, a section named twice merged and a key
//! set twice taking its last value. A UTF-8 BOM at the start is skipped.
//! `include` is refused: nsvpn reads exactly one file.
//!
//! Every key must be on the allow-list: what would run a program or act on
//! the host (`updown`, marks, interface ids, shunt modes, smartcards'
//! PKCS#11 modules, ...) is refused, naming the line and the key; what
//! nsvpn does itself (when to start, what to do when the gateway is gone)
//! is replaced, with a warning.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;

use super::vici::Message;
use super::{CONN, check_key_data, pem_label};
use crate::backend::vpn::RawVpn;
use crate::backend::{at, check_secret};
use crate::profile::{Profile, Source};

/// The profile's fields with `config`: the file, which of its connections,
/// and where the secrets are when the file has no `secrets` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub config: PathBuf,
    pub connection: Option<String>,
    pub psk_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// `userspace`, as for a profile without a file.
    pub userspace: Option<bool>,
}

impl FileSettings {
    /// The files the profile names, by field.
    pub fn files(&self) -> Vec<(&'static str, &Path)> {
        let mut out = vec![("vpn.config", self.config.as_path())];
        out.extend(self.psk_file.as_deref().map(|f| ("vpn.psk_file", f)));
        out.extend(
            self.password_file
                .as_deref()
                .map(|f| ("vpn.password_file", f)),
        );
        out.extend(self.key_file.as_deref().map(|f| ("vpn.key_file", f)));
        out
    }
}

/// `[vpn]` with kind = "ipsec" and `config`: only the fields that say
/// where secrets are; the file says everything else.
pub(crate) fn settings(src: &Source, v: RawVpn, config: String) -> Result<FileSettings> {
    let others = [
        (
            "vpn.server",
            v.server.is_some(),
            "the gateway (remote_addrs)",
        ),
        (
            "vpn.local_id",
            v.local_id.is_some(),
            "your identity (local.id)",
        ),
        (
            "vpn.remote_id",
            v.remote_id.is_some(),
            "the gateway's identity (remote.id)",
        ),
        ("vpn.user", v.user.is_some(), "the EAP user (local.eap_id)"),
        (
            "vpn.cert_file",
            v.cert_file.is_some(),
            "the certificate (local.certs)",
        ),
        (
            "vpn.ca_file",
            v.ca_file.is_some(),
            "the CA (remote.cacerts)",
        ),
        (
            "vpn.proposals",
            v.proposals.is_some(),
            "the IKE proposals (proposals)",
        ),
        (
            "vpn.esp_proposals",
            v.esp_proposals.is_some(),
            "the ESP proposals (children's esp_proposals)",
        ),
    ];
    if let Some((field, _, what)) = others.iter().find(|o| o.1) {
        return Err(src.field(
            field,
            format!(
                "with `config`, the connection file says {what}: remove this field (or `config`, \
                 to describe the connection in the profile)"
            ),
        ));
    }
    let file = |field: &str, p: Option<String>| p.map(|p| src.file(field, &p)).transpose();
    let connection = match v.connection {
        Some(c) if c.is_empty() || !c.chars().all(name_char) => {
            return Err(src.field(
                "vpn.connection",
                format!("{c:?} is not a connection name of a swanctl.conf file"),
            ));
        }
        c => c,
    };
    let s = FileSettings {
        config: src.file("vpn.config", &config)?,
        connection,
        psk_file: file("vpn.psk_file", v.psk_file)?,
        password_file: file("vpn.password_file", v.password_file)?,
        key_file: file("vpn.key_file", v.key_file)?,
        userspace: v.userspace,
    };
    if s.psk_file.is_some() as u8 + s.password_file.is_some() as u8 + s.key_file.is_some() as u8 > 1
    {
        let second = if s.key_file.is_some() {
            "vpn.key_file"
        } else {
            "vpn.password_file"
        };
        return Err(src.field(
            second,
            "a connection authenticates one way: name one of psk_file, password_file, key_file"
                .into(),
        ));
    }
    Ok(s)
}

/// The characters of a section or key name (strongSwan's NAME token).
fn name_char(c: char) -> bool {
    !matches!(
        c,
        '#' | '{' | '}' | '=' | '"' | '\r' | '\n' | '\t' | ' ' | ':' | ','
    )
}

/// One statement of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Kv {
        key: String,
        value: String,
        line: usize,
    },
    Section {
        name: String,
        line: usize,
        body: Vec<Entry>,
    },
}

/// The longest file nsvpn reads (a connection with its certificates'
/// names is a few KiB).
const MAX_SIZE: usize = 1 << 20;

struct Parser {
    chars: Vec<char>,
    i: usize,
    line: usize,
}

enum Tok {
    Newline,
    Open,
    Close,
    Eq,
    Name(String),
    Eof,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn err<T>(&self, line: usize, msg: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("line {line}: {msg}"))
    }

    /// Spaces, tabs, CRs, and a comment up to (not including) its newline.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => self.i += 1,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn token(&mut self) -> Result<Tok, String> {
        self.skip_blank();
        let Some(c) = self.peek() else {
            return Ok(Tok::Eof);
        };
        self.i += 1;
        Ok(match c {
            '\n' => {
                self.line += 1;
                Tok::Newline
            }
            '{' => Tok::Open,
            '}' => Tok::Close,
            '=' => Tok::Eq,
            '"' => return self.err(self.line, "a quoted string where a name belongs"),
            _ => {
                let start = self.i - 1;
                while self.peek().is_some_and(|c| {
                    !matches!(c, '#' | '{' | '}' | '=' | '"' | '\r' | '\n' | '\t' | ' ')
                }) {
                    self.i += 1;
                }
                Tok::Name(self.chars[start..self.i].iter().collect())
            }
        })
    }

    /// A value, after `=`: words and quoted strings up to the end of the
    /// line, a `#` or a `}` (left for the caller).
    fn value(&mut self) -> Result<String, String> {
        let mut parts = Vec::new();
        loop {
            while self.peek().is_some_and(|c| matches!(c, ' ' | '\t' | '\r')) {
                self.i += 1;
            }
            match self.peek() {
                None | Some('#' | '}' | '\n') => break,
                Some('"') => {
                    let start = self.line;
                    self.i += 1;
                    let mut s = String::new();
                    loop {
                        let Some(c) = self.peek() else {
                            return self.err(start, "a quoted string that is never closed");
                        };
                        self.i += 1;
                        match c {
                            '"' => break,
                            '\r' => {}
                            '\n' => {
                                self.line += 1;
                                s.push('\n');
                            }
                            '\\' => {
                                let Some(e) = self.peek() else {
                                    return self.err(start, "a quoted string that is never closed");
                                };
                                self.i += 1;
                                match e {
                                    'n' => s.push('\n'),
                                    'r' => s.push('\r'),
                                    't' => s.push('\t'),
                                    '\n' => self.line += 1,
                                    '\r' if self.peek() == Some('\n') => {
                                        self.i += 1;
                                        self.line += 1;
                                    }
                                    other => s.push(other),
                                }
                            }
                            c => s.push(c),
                        }
                    }
                    parts.push(s);
                }
                Some(_) => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| !matches!(c, '#' | '}' | '"' | '\r' | '\n' | '\t' | ' '))
                    {
                        self.i += 1;
                    }
                    parts.push(self.chars[start..self.i].iter().collect());
                }
            }
        }
        Ok(parts.join(" "))
    }

    /// Statements up to the `}` closing the section opened on line `open`
    /// (or to the end of the file at the top).
    fn statements(&mut self, open: Option<(usize, &str)>) -> Result<Vec<Entry>, String> {
        let mut out = Vec::new();
        loop {
            let line = self.line;
            match self.token()? {
                Tok::Newline => {}
                Tok::Eof => match open {
                    None => return Ok(out),
                    Some((l, n)) => return self.err(l, format!("section `{n}` is never closed")),
                },
                Tok::Close => match open {
                    Some(_) => return Ok(out),
                    None => return self.err(line, "a `}` that closes no section"),
                },
                Tok::Open | Tok::Eq => {
                    return self.err(line, "a `{` or `=` without a name before it");
                }
                Tok::Name(name) => {
                    if name == "include" {
                        self.skip_blank();
                        if self
                            .peek()
                            .is_some_and(|c| c != '=' && c != '\n' && c != '{')
                        {
                            return self.err(
                                line,
                                "`include` is not allowed: nsvpn reads this one file (an include \
                                 could pull in any file of the host); put what it includes here",
                            );
                        }
                    }
                    let save = (self.i, self.line);
                    let template = name.contains(':')
                        || matches!(self.token()?, Tok::Name(n) if n.starts_with(':'));
                    (self.i, self.line) = save;
                    if template {
                        return self.err(
                            line,
                            format!(
                                "`{name}`: sections that inherit from others (`name : template`) \
                                 are not supported: write the settings out"
                            ),
                        );
                    }
                    // `name {`, or `name` with `{` on a later line.
                    let mut t = self.token()?;
                    while matches!(t, Tok::Newline) {
                        t = self.token()?;
                    }
                    match t {
                        Tok::Eq => out.push(Entry::Kv {
                            key: name,
                            value: self.value()?,
                            line,
                        }),
                        Tok::Open => {
                            let body = self.statements(Some((line, &name)))?;
                            out.push(Entry::Section { name, line, body });
                        }
                        _ => {
                            return self.err(
                                line,
                                format!("`{name}` is followed by neither `=` nor `{{`"),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Sections of the same name merged (the first one's line), a key set
/// twice taking its last value, as strongSwan's parser does.
fn merge(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for e in entries {
        match e {
            Entry::Kv { key, value, line } => {
                if let Some(Entry::Kv {
                    value: v, line: l, ..
                }) = out
                    .iter_mut()
                    .find(|o| matches!(o, Entry::Kv { key: k, .. } if *k == key))
                {
                    *v = value;
                    *l = line;
                } else {
                    out.push(Entry::Kv { key, value, line });
                }
            }
            Entry::Section { name, line, body } => {
                if let Some(Entry::Section { body: b, .. }) = out
                    .iter_mut()
                    .find(|o| matches!(o, Entry::Section { name: n, .. } if *n == name))
                {
                    b.extend(body);
                } else {
                    out.push(Entry::Section { name, line, body });
                }
            }
        }
    }
    out.into_iter()
        .map(|e| match e {
            Entry::Section { name, line, body } => Entry::Section {
                name,
                line,
                body: merge(body),
            },
            kv => kv,
        })
        .collect()
}

/// Reads a file's text in strongSwan's settings syntax.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    if text.len() > MAX_SIZE {
        return Err(format!("the file is larger than {MAX_SIZE} bytes"));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(n) = text.lines().position(|l| l.contains('\0')) {
        return Err(format!("line {}: a NUL byte", n + 1));
    }
    let mut p = Parser {
        chars: text.chars().collect(),
        i: 0,
        line: 1,
    };
    Ok(merge(p.statements(None)?))
}

/// What nsvpn does with one key.
enum Rule {
    /// Sent to charon as it is.
    Allow,
    /// Sent as a list (comma-separated in the file).
    List,
    /// Names of files beside the connection file, sent as their data.
    Files(FileKind),
    /// Left out: nsvpn does it itself (the text says how).
    Replace(&'static str),
    /// The file is refused (the text says why).
    Refuse(&'static str),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FileKind {
    Cert,
    PubKey,
}

const RUNS: &str = "it runs a program on the host, as root; nsvpn sets addresses, routes and DNS \
                    inside the namespace itself";
const MARKS: &str = "it sets firewall marks on the host's packets or policies; nsvpn's charon \
                     routes with a mark of its own that nothing else sets";
const IF_ID: &str = "it ties the SAs to an XFRM interface of the host; nsvpn decides where the \
                     tunnel goes (into the profile's namespace)";
const HOST_POLICY: &str = "it changes how the SAs' policies sit on the host; nsvpn keeps them off \
                           the host's own traffic";
const SERVER: &str = "it is a gateway's setting, not a client's";
const IKEV1: &str = "it is for IKEv1; nsvpn speaks IKEv2";
const PKCS11: &str = "smartcards and tokens need a PKCS#11 module loaded into charon, as root on \
                      the host; put the certificate in a file beside this one and name it in \
                      `certs` (or `cacerts`)";
const DPD: &str = "nsvpn decides what happens when the gateway goes: on the kernel path charon \
                   re-establishes (restart, start), on the userspace path it clears the SA \
                   (charon cannot rebuild the tunnel once it is in the namespace; `nsvpn down` \
                   and `up` do)";

fn conn_rule(key: &str) -> Option<Rule> {
    use Rule::*;
    Some(match key {
        "remote_addrs" | "local_addrs" | "proposals" | "vips" => List,
        "version" | "remote_port" | "pull" | "encap" | "mobike" | "fragmentation" | "childless"
        | "send_certreq" | "send_cert" | "dpd_delay" | "dpd_timeout" | "keyingtries"
        | "reauth_time" | "rekey_time" | "over_time" | "rand_time" | "dscp" | "unique" => Allow,
        "local_port" => Replace(
            "nsvpn's charon listens on random ports of its own (the host's IKE daemon may hold \
             500 and 4500)",
        ),
        "pools" => Refuse(SERVER),
        "aggressive" => Refuse(IKEV1),
        "if_id_in" | "if_id_out" => Refuse(IF_ID),
        "mediation" | "mediated_by" | "mediation_peer" => {
            Refuse("IKE mediation (peer to peer) is not supported")
        }
        "ppk_id" | "ppk_required" => Refuse("post-quantum preshared keys are not supported"),
        _ => return None,
    })
}

fn auth_rule(key: &str, remote: bool) -> Option<Rule> {
    use Rule::*;
    Some(match key {
        "auth" | "id" | "eap_id" | "round" | "aaa_id" => Allow,
        "certs" => Files(FileKind::Cert),
        "pubkeys" => Files(FileKind::PubKey),
        "cacerts" if remote => Files(FileKind::Cert),
        "ca_id" | "revocation" if remote => Allow,
        "groups" | "cert_policy" if remote => List,
        "xauth_id" => Refuse(IKEV1),
        _ => return None,
    })
}

fn child_rule(key: &str) -> Option<Rule> {
    use Rule::*;
    Some(match key {
        "local_ts" | "remote_ts" | "esp_proposals" | "ah_proposals" => List,
        "rekey_time" | "life_time" | "rand_time" | "rekey_bytes" | "life_bytes" | "rand_bytes"
        | "rekey_packets" | "life_packets" | "rand_packets" | "inactivity" | "replay_window"
        | "ipcomp" | "copy_df" | "copy_ecn" | "copy_dscp" | "sha256_96" | "tfc_padding"
        | "policies" | "mode" => Allow,
        "updown" => Refuse(RUNS),
        "hostaccess" => Replace("it is for an updown script, and nsvpn runs none"),
        "start_action" => Replace(
            "nsvpn starts the connection itself at `up` (`trap` would install policies that \
             capture the host's traffic; `start` would start it again behind nsvpn's back)",
        ),
        "dpd_action" | "close_action" => Replace(DPD),
        "mark_in" | "mark_in_sa" | "mark_out" | "set_mark_in" | "set_mark_out" => Refuse(MARKS),
        "if_id_in" | "if_id_out" => Refuse(IF_ID),
        "interface" | "priority" | "policies_fwd_out" | "reqid" => Refuse(HOST_POLICY),
        "hw_offload" => Refuse("it asks the host's network card to do ESP"),
        "label" | "label_mode" => Refuse("SELinux labels on the host's policies are not supported"),
        _ => return None,
    })
}

/// A file named in the connection file, to read (relative to its folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub line: usize,
    pub key: String,
    pub name: String,
    kind: FileKind,
}

/// A secret of the file's `secrets` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// `ike<suffix>` (IKE) or `eap<suffix>` (EAP): the secret and its owners.
    Shared {
        kind: &'static str,
        data: Vec<u8>,
        owners: Vec<String>,
    },
    /// `private<suffix>`, `rsa<suffix>`, `ecdsa<suffix>`, `pkcs8<suffix>`:
    /// an unencrypted key in a file beside the connection file.
    Key(FileRef),
}

/// How nsvpn's side authenticates (its first round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalAuth {
    Psk,
    Pubkey,
    Eap,
}

/// A connection file that passed the checks, its files not read yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The connection as `load-conn` takes it (renamed `nsvpn`, its child
    /// too), file lists left empty: [`Checked::files`] fill them.
    pub conn: Message,
    /// The files to read, where they go: (path in `conn`, reference).
    pub files: Vec<(Vec<String>, FileRef)>,
    pub secrets: Vec<Secret>,
    /// The connection's name in the file.
    pub name: String,
    pub server: String,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    pub eap_id: Option<String>,
    pub auth: LocalAuth,
    /// Keys nsvpn left out, each with what it does instead.
    pub warnings: Vec<String>,
}

/// Decodes a secret as swanctl does: `0x` hex, `0s` base64, else the text.
fn secret_data(v: &str) -> Result<Vec<u8>, String> {
    if let Some(h) = v.strip_prefix("0x") {
        if h.len() % 2 != 0 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("is not hex after its `0x`".into());
        }
        return Ok((0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0))
            .collect());
    }
    if let Some(b) = v.strip_prefix("0s") {
        return base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|_| "is not base64 after its `0s`".to_string());
    }
    Ok(v.as_bytes().to_vec())
}

/// A comma-separated list, as swanctl splits it.
fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim_matches(' ').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A file name in the connection file: relative to its folder, inside it.
fn file_name(v: &str) -> Result<(), String> {
    let p = Path::new(v);
    if v.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "{v:?} is not a file name relative to this file's folder (no absolute path, no `..`): \
             put the file beside the connection file"
        ));
    }
    Ok(())
}

/// What a section of a section is: `(walk, name, line, body)`, true if taken.
type SectionFn<'a> = dyn FnMut(&mut Walk, &str, usize, &[Entry]) -> bool + 'a;

struct Walk {
    errors: Vec<String>,
    warnings: Vec<String>,
    files: Vec<(Vec<String>, FileRef)>,
}

impl Walk {
    fn refuse(&mut self, line: usize, path: &str, why: &str) {
        self.errors.push(format!(
            "line {line}: `{path}` is not allowed: {why}; remove it"
        ));
    }

    fn unknown(&mut self, line: usize, path: &str) {
        self.errors.push(format!(
            "line {line}: `{path}` is not a setting nsvpn knows to be safe for a client \
             connection; remove it"
        ));
    }

    /// The key/values of one section, by `rule`, into `out`; sections go
    /// to `section`, which says whether it took them.
    fn section(
        &mut self,
        entries: &[Entry],
        prefix: &str,
        at: &[String],
        rule: &dyn Fn(&str) -> Option<Rule>,
        out: &mut Message,
        section: &mut SectionFn,
    ) {
        for e in entries {
            match e {
                Entry::Kv { key, value, line } => {
                    let path = format!("{prefix}{key}");
                    if value.is_empty() {
                        continue;
                    }
                    if value.chars().any(|c| c.is_control() && c != '\t') {
                        self.errors.push(format!(
                            "line {line}: `{path}`: a control character (a line break in \
                             quotes?) in the value"
                        ));
                        continue;
                    }
                    match rule(key) {
                        None => self.unknown(*line, &path),
                        Some(Rule::Refuse(why)) => self.refuse(*line, &path, why),
                        Some(Rule::Replace(why)) => self
                            .warnings
                            .push(format!("line {line}: `{path}` left out: {why}")),
                        Some(Rule::Allow) => out.0.push((
                            key.clone(),
                            super::vici::Value::Str(value.as_bytes().to_vec()),
                        )),
                        Some(Rule::List) => {
                            *out = std::mem::take(out).list(key, split_list(value));
                        }
                        Some(Rule::Files(kind)) => {
                            for name in split_list(value) {
                                if let Err(e) = file_name(&name) {
                                    self.errors.push(format!("line {line}: `{path}`: {e}"));
                                    continue;
                                }
                                let mut to = at.to_vec();
                                to.push(key.clone());
                                self.files.push((
                                    to,
                                    FileRef {
                                        line: *line,
                                        key: path.clone(),
                                        name,
                                        kind,
                                    },
                                ));
                            }
                            *out = std::mem::take(out).list(key, Vec::<Vec<u8>>::new());
                        }
                    }
                }
                Entry::Section { name, line, body } => {
                    if !section(self, name, *line, body) {
                        self.unknown(*line, &format!("{prefix}{name}"));
                    }
                }
            }
        }
    }
}

/// The value of a key in a section, if set.
fn kv<'a>(entries: &'a [Entry], key: &str) -> Option<(&'a str, usize)> {
    entries.iter().find_map(|e| match e {
        Entry::Kv {
            key: k,
            value,
            line,
        } if k == key && !value.is_empty() => Some((value.as_str(), *line)),
        _ => None,
    })
}

fn sections(entries: &[Entry]) -> impl Iterator<Item = (&str, usize, &[Entry])> {
    entries.iter().filter_map(|e| match e {
        Entry::Section { name, line, body } => Some((name.as_str(), *line, body.as_slice())),
        _ => None,
    })
}

/// Checks a parsed file and takes its connection (`want`, or the only
/// one): every problem at once, each naming its line and key.
pub fn check(entries: &[Entry], want: Option<&str>) -> Result<Checked, Vec<String>> {
    let mut w = Walk {
        errors: Vec::new(),
        warnings: Vec::new(),
        files: Vec::new(),
    };
    let mut conns: Vec<(&str, usize, &[Entry])> = Vec::new();
    let mut secrets: Option<&[Entry]> = None;
    for e in entries {
        match e {
            Entry::Section { name, body, line } if name == "connections" => {
                conns.extend(sections(body));
                for e in body {
                    if let Entry::Kv { key, line, .. } = e {
                        w.unknown(*line, &format!("connections.{key}"));
                    }
                }
                if conns.is_empty() {
                    w.errors
                        .push(format!("line {line}: `connections` holds no connection"));
                }
            }
            Entry::Section { name, body, .. } if name == "secrets" => secrets = Some(body),
            Entry::Section { name, line, .. } if name == "pools" => {
                w.refuse(*line, name, "address pools are a gateway's")
            }
            Entry::Section { name, line, .. } if name == "authorities" => w.refuse(
                *line,
                name,
                "nsvpn's charon fetches no CRL or OCSP and loads no PKCS#11 module; name the CA in \
                 `remote.cacerts`",
            ),
            Entry::Section { name, line, .. }
            | Entry::Kv {
                key: name, line, ..
            } => w.unknown(*line, name),
        }
    }
    let names: Vec<&str> = conns.iter().map(|c| c.0).collect();
    let conn = match want {
        Some(want) => match conns.iter().find(|c| c.0 == want) {
            Some(c) => Some(*c),
            None => {
                w.errors.push(format!(
                    "the file has no connection `{want}` (vpn.connection): it has {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
                None
            }
        },
        None if conns.len() > 1 => {
            w.errors.push(format!(
                "line {}: the file holds {} connections ({}): nsvpn runs one; name it in the \
                 profile (connection = \"{}\")",
                conns[1].1,
                conns.len(),
                names.join(", "),
                names[0]
            ));
            None
        }
        None if conns.is_empty() => {
            w.errors.push(
                "the file holds no connection: a client connection belongs in `connections { \
                 name { ... } }`"
                    .into(),
            );
            None
        }
        None => Some(conns[0]),
    };
    let mut out = Message::new();
    let mut local_auth: Option<(&str, usize)> = None;
    let (mut local_id, mut remote_id, mut eap_id) = (None, None, None);
    let mut server = String::new();
    let mut cname = String::new();
    if let Some((name, line, body)) = conn {
        cname = name.to_string();
        let prefix = format!("connections.{name}.");
        let mut children: Vec<(String, usize, Message)> = Vec::new();
        let mut auths: Vec<(String, Message)> = Vec::new();
        w.section(
            body,
            &prefix,
            &[],
            &conn_rule,
            &mut out,
            &mut |w, sname, _, sbody| {
                let remote = sname.starts_with("remote");
                if remote || sname.starts_with("local") {
                    let mut m = Message::new();
                    let p = format!("{prefix}{sname}.");
                    w.section(
                        sbody,
                        &p,
                        &[sname.to_string()],
                        &|k| auth_rule(k, remote),
                        &mut m,
                        &mut |w, n, l, _| {
                            if n.starts_with("cert") || n.starts_with("cacert") {
                                w.refuse(l, &format!("{p}{n}"), PKCS11);
                                true
                            } else {
                                false
                            }
                        },
                    );
                    auths.push((sname.to_string(), m));
                    true
                } else if sname == "children" {
                    for (child, cline, cbody) in sections(sbody) {
                        let mut m = Message::new();
                        let p = format!("{prefix}children.{child}.");
                        w.section(
                            cbody,
                            &p,
                            &["children".into(), CONN.into()],
                            &child_rule,
                            &mut m,
                            &mut |_, _, _, _| false,
                        );
                        if let Some((mode, l)) = kv(cbody, "mode")
                            && mode != "tunnel"
                        {
                            w.refuse(
                                l,
                                &format!("{p}mode"),
                                "only `tunnel` (pass and drop install policies on the host; \
                                 transport and beet carry no virtual IP)",
                            );
                        }
                        children.push((child.to_string(), cline, m));
                    }
                    for e in sbody {
                        if let Entry::Kv { key, line, .. } = e {
                            w.unknown(*line, &format!("{prefix}children.{key}"));
                        }
                    }
                    true
                } else {
                    false
                }
            },
        );
        // The first local and remote rounds say who is who.
        let first = |side: &str| {
            sections(body)
                .filter(|(n, ..)| n.starts_with(side))
                .min_by_key(|(_, _, b)| kv(b, "round").and_then(|r| r.0.parse::<u32>().ok()))
        };
        match first("local") {
            Some((_, l, b)) => {
                local_id = kv(b, "id").map(|v| v.0.to_string());
                eap_id = kv(b, "eap_id").map(|v| v.0.to_string());
                local_auth = Some(kv(b, "auth").unwrap_or(("pubkey", l)));
            }
            None => w.errors.push(format!(
                "line {line}: `{prefix}local` is missing: say how you authenticate (auth = psk, \
                 pubkey or eap-...)"
            )),
        }
        remote_id = first("remote").and_then(|(_, _, b)| kv(b, "id").map(|v| v.0.to_string()));
        match kv(body, "remote_addrs") {
            Some((v, l)) => {
                let list = split_list(v);
                let host = |h: &String| {
                    !h.starts_with('-')
                        && h.chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
                };
                if list.len() != 1 || !list.iter().all(host) {
                    w.errors.push(format!(
                        "line {l}: `{prefix}remote_addrs`: name the gateway, one host name or \
                         address (not {v:?})"
                    ));
                }
                server = list.into_iter().next().unwrap_or_default();
            }
            None => w.errors.push(format!(
                "line {line}: `{prefix}remote_addrs` is missing: name the gateway"
            )),
        }
        if let Some((v, l)) = kv(body, "version")
            && v != "2"
            && v != "0"
        {
            w.refuse(l, &format!("{prefix}version"), IKEV1);
        }
        match children.len() {
            1 => {}
            0 => w.errors.push(format!(
                "line {line}: `{prefix}children` holds no child: nsvpn needs one (children {{ net \
                 {{ remote_ts = ... }} }})"
            )),
            n => w.errors.push(format!(
                "line {}: `{prefix}children` holds {n} children ({}): nsvpn brings up one; merge \
                 them (local_ts and remote_ts take lists)",
                children[1].1,
                children
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        // The settings nsvpn forces (as for a profile without a file).
        let set = |m: Message, k: &str, v: &str| {
            let mut m = m;
            m.0.retain(|(n, _)| n != k);
            m.kv(k, v)
        };
        let default = |m: Message, k: &str, v: &[&str]| {
            if m.get(k).is_some() { m } else { m.list(k, v) }
        };
        out = set(out, "version", "2");
        out = default(out, "vips", &["0.0.0.0"]);
        if out.get("dpd_delay").is_none() {
            out = out.kv("dpd_delay", "10s");
        }
        if out.get("unique").is_none() {
            out = out.kv("unique", "replace");
        }
        for (name, m) in auths {
            out = out.section(&name, m);
        }
        if let Some((_, _, m)) = children.into_iter().next() {
            let m = default(m, "remote_ts", &["0.0.0.0/0"]);
            let m = set(m, "dpd_action", "clear");
            out = out.section("children", Message::new().section(CONN, m));
        }
    }
    let auth = match local_auth {
        None => LocalAuth::Pubkey,
        Some(("psk", _)) => LocalAuth::Psk,
        Some((a, _)) if a.starts_with("eap") => LocalAuth::Eap,
        Some((a, _))
            if ["pubkey", "rsa", "ecdsa", "bliss"]
                .iter()
                .any(|p| a.starts_with(p)) =>
        {
            LocalAuth::Pubkey
        }
        Some((a, l)) => {
            w.errors.push(format!(
                "line {l}: `connections.{cname}.local.auth = {a}`: nsvpn authenticates with psk, \
                 pubkey (rsa/ecdsa) or eap-..."
            ));
            LocalAuth::Pubkey
        }
    };
    let mut found = Vec::new();
    if let Some(body) = secrets {
        for e in body {
            let Entry::Section { name, line, body } = e else {
                if let Entry::Kv { key, line, .. } = e {
                    w.unknown(*line, &format!("secrets.{key}"));
                }
                continue;
            };
            let p = format!("secrets.{name}.");
            let shared = if name.starts_with("ike") {
                Some("IKE")
            } else if name.starts_with("eap") {
                Some("EAP")
            } else {
                None
            };
            if let Some(kind) = shared {
                let mut owners = Vec::new();
                let mut data = None;
                for e in body {
                    match e {
                        Entry::Kv { key, value, .. } if key.starts_with("id") => {
                            owners.push(value.clone())
                        }
                        Entry::Kv { key, value, line } if key == "secret" => {
                            match secret_data(value) {
                                Ok(d) => data = Some(d),
                                Err(e) => w.errors.push(format!("line {line}: `{p}secret` {e}")),
                            }
                        }
                        Entry::Kv { key, line, .. }
                        | Entry::Section {
                            name: key, line, ..
                        } => w.unknown(*line, &format!("{p}{key}")),
                    }
                }
                match data {
                    Some(data) => found.push(Secret::Shared { kind, data, owners }),
                    None => w
                        .errors
                        .push(format!("line {line}: `{p}secret` is missing")),
                }
            } else if ["private", "rsa", "ecdsa", "pkcs8"]
                .iter()
                .any(|k| name.starts_with(k))
            {
                let mut file = None;
                for e in body {
                    match e {
                        Entry::Kv { key, value, line } if key == "file" => match file_name(value) {
                            Ok(()) => {
                                file = Some(FileRef {
                                    line: *line,
                                    key: format!("{p}file"),
                                    name: value.clone(),
                                    kind: FileKind::Cert,
                                })
                            }
                            Err(e) => w.errors.push(format!("line {line}: `{p}file`: {e}")),
                        },
                        Entry::Kv { key, line, .. } if key == "secret" => w.refuse(
                            *line,
                            &format!("{p}secret"),
                            "nothing could type an encrypted key's passphrase at every `up`: \
                             decrypt the key into a file only root may read (openssl pkey -in \
                             KEY -out KEY.plain) and name that",
                        ),
                        Entry::Kv { key, line, .. }
                        | Entry::Section {
                            name: key, line, ..
                        } => w.unknown(*line, &format!("{p}{key}")),
                    }
                }
                match file {
                    Some(f) => found.push(Secret::Key(f)),
                    None => w.errors.push(format!("line {line}: `{p}file` is missing")),
                }
            } else if name.starts_with("token") {
                w.refuse(*line, &format!("secrets.{name}"), PKCS11);
            } else if name.starts_with("xauth") {
                w.refuse(*line, &format!("secrets.{name}"), IKEV1);
            } else {
                w.unknown(*line, &format!("secrets.{name}"));
            }
        }
    }
    if !w.errors.is_empty() {
        // In the file's order (those without a line last).
        let line = |e: &String| {
            e.strip_prefix("line ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        };
        w.errors.sort_by_key(line);
        return Err(w.errors);
    }
    Ok(Checked {
        conn: Message::new().section(CONN, out),
        files: w.files,
        secrets: found,
        name: cname,
        server,
        local_id,
        remote_id,
        eap_id,
        auth,
        warnings: w.warnings,
    })
}

/// The connection file read, checked, and its files and secrets read:
/// what `prepare` hands `connect`.
#[derive(Clone)]
pub struct Loaded {
    pub conn: Message,
    pub secrets: Vec<(&'static str, Message)>,
    /// The field and file to check when the gateway refuses nsvpn's side.
    pub fields: String,
    pub what: &'static str,
    /// The file, for the message when the gateway cannot prove itself.
    pub config: PathBuf,
}

impl Loaded {
    pub fn auth_what(&self) -> &'static str {
        self.what
    }
}

/// Sets the list at `path` (["local", "certs"]) in the connection.
fn put_file(conn: &mut Message, path: &[String], data: Vec<u8>) {
    fn walk(m: &mut Message, path: &[String], data: Vec<u8>) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        for (k, v) in m.0.iter_mut() {
            if k == first {
                match v {
                    super::vici::Value::Section(s) if !rest.is_empty() => {
                        return walk(s, rest, data);
                    }
                    super::vici::Value::List(items) if rest.is_empty() => {
                        items.push(data);
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(super::vici::Value::Section(c)) = conn.0.first_mut().map(|(_, v)| v) {
        walk(c, path, data);
    }
}

/// Reads the profile's connection file and everything it names.
pub fn load(profile: &Profile, s: &FileSettings) -> Result<(Loaded, Checked)> {
    let field = "vpn.config";
    let path = &s.config;
    crate::trust::check(
        path,
        &at(profile, field),
        crate::trust::Role::field(profile, field),
    )?;
    let where_ = || format!("{} ({})", at(profile, field), path.display());
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: {e}", where_()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow!(
            "{}: the file is not UTF-8 text (a swanctl.conf connection file)",
            where_()
        )
    })?;
    let entries = parse(&text).map_err(|e| {
        anyhow!(
            "{}: not a swanctl.conf file strongSwan would read: {e}",
            where_()
        )
    })?;
    let checked = check(&entries, s.connection.as_deref()).map_err(|errs| {
        anyhow!(
            "{}: this swanctl.conf file could act on the host or is not a client connection nsvpn \
             can run:\n  {}",
            where_(),
            errs.join("\n  ")
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    // The file holds secrets: warn if others may read it.
    if checked
        .secrets
        .iter()
        .any(|x| matches!(x, Secret::Shared { .. }))
    {
        crate::trust::warn_if_exposed(path, &at(profile, field));
    }
    let read = |r: &FileRef, secret: bool| -> Result<Vec<u8>> {
        let p = dir.join(&r.name);
        let label = format!(
            "{} ({}): line {}: `{}`",
            at(profile, field),
            path.display(),
            r.line,
            r.key
        );
        crate::trust::check(&p, &label, crate::trust::Role::field(profile, field))?;
        if secret {
            crate::trust::warn_if_exposed(&p, &label);
        }
        let data = std::fs::read(&p).map_err(|e| anyhow!("{label}: {}: {e}", p.display()))?;
        if data.iter().all(u8::is_ascii_whitespace) {
            bail!("{label}: {} is empty", p.display());
        }
        Ok(data)
    };
    let mut conn = checked.conn.clone();
    for (to, r) in &checked.files {
        let data = read(r, false)?;
        let p = dir.join(&r.name);
        match r.kind {
            FileKind::Cert => {
                if check_cert_data(&data).is_err() {
                    bail!(
                        "{} ({}): line {}: `{}`: {} is not an X.509 certificate (PEM or DER)",
                        at(profile, field),
                        path.display(),
                        r.line,
                        r.key,
                        p.display()
                    );
                }
            }
            FileKind::PubKey => {
                if !matches!(pem_label(&data), Some(l) if l.ends_with("PUBLIC KEY"))
                    && data.first() != Some(&0x30)
                {
                    bail!(
                        "{} ({}): line {}: `{}`: {} is not a public key (PEM or DER)",
                        at(profile, field),
                        path.display(),
                        r.line,
                        r.key,
                        p.display()
                    );
                }
            }
        }
        put_file(&mut conn, to, data);
    }
    let mut secrets = Vec::new();
    let (mut shared, mut keys) = (
        [false, false], // IKE, EAP
        false,
    );
    for x in &checked.secrets {
        match x {
            Secret::Shared { kind, data, owners } => {
                shared[usize::from(*kind == "EAP")] = true;
                secrets.push((
                    "load-shared",
                    Message::new()
                        .kv(
                            "id",
                            format!("nsvpn-{}-{}", kind.to_lowercase(), secrets.len()),
                        )
                        .kv("type", kind)
                        .kv("data", data)
                        .list("owners", owners),
                ));
            }
            Secret::Key(r) => {
                keys = true;
                let data = read(r, true)?;
                let label = format!(
                    "{} ({}): line {}: `{}` ({})",
                    at(profile, field),
                    path.display(),
                    r.line,
                    r.key,
                    dir.join(&r.name).display()
                );
                check_key_data(&label, &data)?;
                secrets.push((
                    "load-key",
                    Message::new().kv("type", "any").kv("data", data),
                ));
            }
        }
    }
    // The profile's own secret file, for the connection's way.
    let (need, have_file, field_name, what) = match checked.auth {
        LocalAuth::Psk => (
            "an `ike` secret",
            shared[0],
            "vpn.psk_file",
            "the pre-shared key",
        ),
        LocalAuth::Eap => (
            "an `eap` secret",
            shared[1],
            "vpn.password_file",
            "the user name or password",
        ),
        LocalAuth::Pubkey => (
            "a `private` key file",
            keys,
            "vpn.key_file",
            "the certificate",
        ),
    };
    let given = match checked.auth {
        LocalAuth::Psk => &s.psk_file,
        LocalAuth::Eap => &s.password_file,
        LocalAuth::Pubkey => &s.key_file,
    };
    for (f, p) in s.files().into_iter().skip(1) {
        if f != field_name {
            bail!(
                "{} ({}): the connection `{}` authenticates with {}, not what this field is for: \
                 remove it",
                at(profile, f),
                p.display(),
                checked.name,
                match checked.auth {
                    LocalAuth::Psk => "a pre-shared key (vpn.psk_file)",
                    LocalAuth::Eap => "EAP (vpn.password_file)",
                    LocalAuth::Pubkey => "a certificate (vpn.key_file)",
                }
            );
        }
    }
    match (given, have_file) {
        (Some(_), true) => bail!(
            "{}: the connection file's `secrets` section has {need} already: remove one of them",
            at(profile, field_name)
        ),
        (None, false) => bail!(
            "{}: the connection `{}` needs {need} in its `secrets` section, or `{}` in the profile",
            where_(),
            checked.name,
            field_name.trim_start_matches("vpn.")
        ),
        (None, true) => {}
        (Some(f), false) => match checked.auth {
            LocalAuth::Pubkey => {
                let data = super::read_file(profile, field_name, f, true, "private key in it")?;
                super::check_key(profile, f, &data)?;
                secrets.push((
                    "load-key",
                    Message::new().kv("type", "any").kv("data", data),
                ));
            }
            LocalAuth::Psk | LocalAuth::Eap => {
                check_secret(profile, field_name, f)?;
                let line = super::first_line(
                    profile,
                    field_name,
                    f,
                    if checked.auth == LocalAuth::Psk {
                        "pre-shared key"
                    } else {
                        "password"
                    },
                )?;
                let (kind, owners): (&str, Vec<String>) = if checked.auth == LocalAuth::Psk {
                    (
                        "IKE",
                        [checked.local_id.clone(), checked.remote_id.clone()]
                            .into_iter()
                            .flatten()
                            .collect(),
                    )
                } else {
                    (
                        "EAP",
                        checked
                            .eap_id
                            .clone()
                            .or(checked.local_id.clone())
                            .into_iter()
                            .collect(),
                    )
                };
                secrets.push((
                    "load-shared",
                    Message::new()
                        .kv("id", "nsvpn-profile")
                        .kv("type", kind)
                        .kv("data", line)
                        .list("owners", owners),
                ));
            }
        },
    }
    if checked.auth == LocalAuth::Pubkey
        && !checked.files.iter().any(|(to, _)| {
            to.first().is_some_and(|s| s.starts_with("local"))
                && to.last().is_some_and(|k| k == "certs")
        })
    {
        bail!(
            "{}: the connection `{}` authenticates with a certificate: name it in `local.certs`",
            where_(),
            checked.name
        );
    }
    for w in &checked.warnings {
        eprintln!("nsvpn: warning: {}: {w}", path.display());
    }
    let fields = if given.is_some() {
        format!("{field_name} and {}", path.display())
    } else {
        format!("the `secrets` and `local` sections of {}", path.display())
    };
    Ok((
        Loaded {
            conn,
            secrets,
            fields,
            what,
            config: path.clone(),
        },
        checked,
    ))
}

fn check_cert_data(data: &[u8]) -> Result<(), ()> {
    match pem_label(data) {
        Some(l) if l == "CERTIFICATE" || l == "X509 CERTIFICATE" => Ok(()),
        None if data.first() == Some(&0x30) => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider's file as they come: a BOM, CRLF, comments, quotes, a
    /// section opened on the next line, a key set twice.
    const PROVIDER: &str = "\u{feff}# Customer VPN, exported 2024-05-02\r\n\
        connections {\r\n\
        \x20 customer-vpn {\r\n\
        \x20   remote_addrs = vpn.customer.example   # the gateway\r\n\
        \x20   vips = 0.0.0.0\r\n\
        \x20   proposals = aes256-sha256-modp2048, aes128-sha256-modp2048\r\n\
        \x20   local\r\n\
        \x20   {\r\n\
        \x20     auth = psk\r\n\
        \x20     id = \"alice@consultancy example\"\r\n\
        \x20   }\r\n\
        \x20   remote {\r\n\
        \x20     auth = psk\r\n\
        \x20     id = vpn.customer.example\r\n\
        \x20   }\r\n\
        \x20   children {\r\n\
        \x20     net {\r\n\
        \x20       remote_ts = 10.20.0.0/16,10.30.0.0/16\r\n\
        \x20       esp_proposals = aes256-sha256\r\n\
        \x20       rekey_time = 1h\r\n\
        \x20       rekey_time = 2h\r\n\
        \x20       start_action = trap\r\n\
        \x20       dpd_action = restart\r\n\
        \x20     }\r\n\
        \x20   }\r\n\
        \x20 }\r\n\
        }\r\n\
        secrets {\r\n\
        \x20 ike-1 {\r\n\
        \x20   id-a = \"alice@consultancy example\"\r\n\
        \x20   secret = \"a \\\"quoted\\\" # secret\"\r\n\
        \x20 }\r\n\
        }\r\n";

    #[test]
    fn a_providers_file_becomes_the_connection_nsvpn_loads() {
        let entries = parse(PROVIDER).unwrap();
        let c = check(&entries, None).unwrap();
        insta::assert_snapshot!(c.conn.to_string());
        assert_eq!(c.name, "customer-vpn");
        assert_eq!(c.server, "vpn.customer.example");
        assert_eq!(c.local_id.as_deref(), Some("alice@consultancy example"));
        assert_eq!(c.remote_id.as_deref(), Some("vpn.customer.example"));
        assert_eq!(c.auth, LocalAuth::Psk);
        assert_eq!(
            c.secrets,
            [Secret::Shared {
                kind: "IKE",
                data: b"a \"quoted\" # secret".to_vec(),
                owners: vec!["alice@consultancy example".into()],
            }]
        );
        insta::assert_snapshot!("provider_warnings", c.warnings.join("\n"));
        // The same file with LF only and no BOM is the same connection.
        let lf = PROVIDER
            .trim_start_matches('\u{feff}')
            .replace("\r\n", "\n");
        assert_eq!(check(&parse(&lf).unwrap(), None).unwrap(), c);
    }

    #[test]
    fn the_syntax_as_strongswan_reads_it() {
        let e = parse("a = one  two\t\"three  four\" # c\nb=\nc = \"x\\\ny\"\ns { t { k = v } }\ns { u = 1 }\n")
            .unwrap();
        let kv = |k: &str| super::kv(&e, k).map(|v| v.0.to_string());
        assert_eq!(kv("a").as_deref(), Some("one two three  four"));
        assert_eq!(kv("b"), None);
        assert_eq!(kv("c").as_deref(), Some("xy"));
        // Sections of one name merge.
        let s: Vec<_> = sections(&e).collect();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].2.len(), 2);
        for (bad, why) in [
            ("a {\n", "line 1: section `a` is never closed"),
            ("}\n", "line 1: a `}` that closes no section"),
            (
                "a = \"open\n\n",
                "line 1: a quoted string that is never closed",
            ),
            (
                "\"a\" = 1\n",
                "line 1: a quoted string where a name belongs",
            ),
            (
                "x\ny = 1\n",
                "line 1: `x` is followed by neither `=` nor `{`",
            ),
            (
                "a : b {\n}\n",
                "line 1: `a`: sections that inherit from others",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with(why) || e.contains(why), "{bad:?}: {e}");
        }
    }

    fn errors(text: &str, want: Option<&str>) -> String {
        match parse(text) {
            Err(e) => e,
            Ok(e) => check(&e, want).unwrap_err().join("\n"),
        }
    }

    #[test]
    fn what_could_act_on_the_host_is_refused_naming_line_and_key() {
        let hostile = "connections {\n\
            \x20 c {\n\
            \x20   remote_addrs = gw.example\n\
            \x20   if_id_in = 7\n\
            \x20   local { auth = pubkey\n certs = /etc/ssl/private/host.pem\n }\n\
            \x20   remote { auth = pubkey\n cacerts = ../ca.crt\n cert-hsm { handle = 1\n module = evil } }\n\
            \x20   children {\n\
            \x20     net {\n\
            \x20       updown = /tmp/pwn.sh\n\
            \x20       mark_out = 42\n\
            \x20       mode = pass\n\
            \x20       interface = eth0\n\
            \x20       bogus_key = 1\n\
            \x20     }\n\
            \x20   }\n\
            \x20 }\n\
            }\n\
            pools { p { addrs = 10.0.0.0/8 } }\n\
            secrets { private-k { file = k.pem\n secret = pass } token-1 { module = evil } }\n";
        insta::assert_snapshot!(errors(hostile, None));
        insta::assert_snapshot!(
            "include",
            errors(
                "connections {\n include /etc/swanctl/conf.d/*.conf\n}\n",
                None
            )
        );
        let two = "connections {\n a { remote_addrs = x\n local { auth = psk }\n children { n {} } }\n\
                   b { remote_addrs = y\n local { auth = psk }\n children { n {} } }\n}\n";
        insta::assert_snapshot!("several", errors(two, None));
        insta::assert_snapshot!("missing", errors(two, Some("c")));
        // Naming one takes it.
        let c = check(&parse(two).unwrap(), Some("b")).unwrap();
        assert_eq!(c.server, "y");
        insta::assert_snapshot!(
            "incomplete",
            errors(
                "connections {\n c {\n  version = 1\n  children { a {}\n b {} }\n }\n}\n",
                None
            )
        );
    }

    #[test]
    fn secrets_as_swanctl_decodes_them() {
        assert_eq!(secret_data("0x414243").unwrap(), b"ABC");
        assert_eq!(secret_data("0sQUJD").unwrap(), b"ABC");
        assert_eq!(secret_data("plain").unwrap(), b"plain");
        assert!(secret_data("0x4").is_err());
        assert!(secret_data("0s!!").is_err());
    }

    #[test]
    fn files_named_go_where_they_are_named() {
        let text = "connections { c {\n remote_addrs = gw\n local { auth = pubkey\n certs = me.crt\n id = me }\n\
                    remote { auth = pubkey\n cacerts = ca.crt, ca2.crt }\n children { n { } }\n} }\n\
                    secrets { private-me { file = me.key } }\n";
        let c = check(&parse(text).unwrap(), None).unwrap();
        let names: Vec<_> = c
            .files
            .iter()
            .map(|(to, r)| (to.join("."), r.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("local.certs".to_string(), "me.crt"),
                ("remote.cacerts".to_string(), "ca.crt"),
                ("remote.cacerts".to_string(), "ca2.crt")
            ]
        );
        let mut conn = c.conn.clone();
        for (to, r) in &c.files {
            put_file(&mut conn, to, r.name.to_uppercase().into_bytes());
        }
        insta::assert_snapshot!(conn.to_string());
        assert!(matches!(&c.secrets[..], [Secret::Key(r)] if r.name == "me.key"));
    }
}
