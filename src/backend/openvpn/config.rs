//! Reading a `.ovpn` file the way openvpn reads it, and deciding with an
//! allow-list what of it openvpn may see.
//!
//! openvpn runs as root on the host, so every option in the file is a
//! decision about what root does. nsvpn reads the file as openvpn's own
//! parser does (a UTF-8 BOM on line 1, `--` before an option, single and
//! double quotes, backslash escapes, `#`/`;` comments, `<tag>` inline blocks,
//! `<connection>` blocks parsed as options, `setenv opt` unwrapped, `config`
//! includes followed), checks every option against a list of client options
//! known to be safe, and refuses everything else by name, all at once.
//!
//! openvpn never reads the user's file: it reads the checked copy nsvpn
//! renders ([`Checked::text`]), one accepted option per line in openvpn's own
//! quoting. Whatever nsvpn's reading and openvpn's might disagree on, openvpn
//! runs what nsvpn checked. Comment lines and the lines of options nsvpn
//! replaces become empty lines, so openvpn's own messages keep the file's
//! line numbers.

use serde::{Deserialize, Serialize};

/// openvpn reads a line into 256 bytes and refuses a longer one; inside a
/// block a longer line would be split, and its second half could close the
/// block. With the newline, 254 bytes of text fit.
const MAX_LINE: usize = 254;
/// openvpn keeps at most 16 words of a line and drops the rest silently.
const MAX_WORDS: usize = 16;
/// openvpn's limit on nested `config` includes.
const MAX_INCLUDE_DEPTH: usize = 10;

/// What nsvpn needs to know of a checked `.ovpn` file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OvpnConfig {
    /// `auth-user-pass` without a file or block: openvpn would prompt.
    pub prompts_for_password: bool,
    /// Every transport is UDP (so an exit notification can be sent).
    pub udp_only: bool,
    pub explicit_exit_notify: bool,
    pub verb: Option<u32>,
    /// `redirect-gateway` in the file itself (not pushed).
    pub redirect_gateway: Option<Vec<String>>,
    pub route_nopull: bool,
    pub persist_tun: bool,
    /// The servers to try, in order: "host port/proto".
    pub remotes: Vec<String>,
    /// The file sets how long openvpn tries one server
    /// (`server-poll-timeout` or `connect-timeout`).
    pub sets_server_timeout: bool,
}

/// A `.ovpn` file that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// What openvpn reads (secrets included: never written to disk).
    pub text: String,
    pub config: OvpnConfig,
    /// Options nsvpn replaced with its own, each with what it does instead.
    pub warnings: Vec<String>,
}

/// Reads an included file: given the path as the `config` line names it,
/// returns how to call it in messages and its text, or why it cannot be read.
pub type Loader<'a> = dyn FnMut(&str) -> Result<(String, String), String> + 'a;

/// What nsvpn does with one option.
enum Rule {
    /// Passed to openvpn as it is.
    Allow,
    /// Left out of what openvpn reads: nsvpn does it itself (the text says how).
    Replace(&'static str),
    /// The file is refused (the text says why and what to do instead).
    Refuse(&'static str),
}

const HOOK_ONLY: &str = "nsvpn's hook is the only script openvpn runs; it sets addresses, routes and DNS inside the namespace";
const SERVER_SCRIPT: &str = "a server option that runs a program on the host";
const LOG: &str = "nsvpn keeps openvpn's log in /run/nsvpn/<profile>/openvpn.log";
const STANDALONE: &str = "a standalone mode of openvpn, not a connection";
const LOADS_CODE: &str = "it loads a shared library into openvpn, which runs as root on the host";
const WRITES: &str = "it makes openvpn, as root, write a file where the .ovpn says";

/// The allow-list: every option a client's `.ovpn` may hold, and what nsvpn
/// does with the options it knows to be unsafe. An option not named here is
/// refused.
fn rule(opt: &str) -> Option<Rule> {
    use Rule::*;
    Some(match opt {
        // Connecting: servers, transport, proxies, retries.
        "client"
        | "pull"
        | "tls-client"
        | "remote"
        | "remote-random"
        | "remote-random-hostname"
        | "resolv-retry"
        | "proto"
        | "proto-force"
        | "port"
        | "rport"
        | "lport"
        | "nobind"
        | "bind"
        | "local"
        | "float"
        | "connect-retry"
        | "connect-retry-max"
        | "connect-timeout"
        | "server-poll-timeout"
        | "http-proxy"
        | "http-proxy-option"
        | "http-proxy-retry"
        | "http-proxy-timeout"
        | "http-proxy-user-pass"
        | "socks-proxy"
        | "socks-proxy-retry"
        | "mark"
        | "bind-dev"
        | "sndbuf"
        | "rcvbuf"
        | "socket-flags"
        | "fast-io"
        | "allow-recursive-routing"
        | "connection"
        | "mode" => Allow,
        // The tunnel device (nsvpn names it, makes it tun and configures it).
        "dev" | "dev-type" | "topology" | "tun-mtu" | "tun-mtu-extra" | "tun-mtu-max"
        | "link-mtu" | "mtu-disc" | "mtu-test" | "mssfix" | "fragment" | "tun-ipv6"
        | "txqueuelen" | "max-packet-size" | "disable-dco" | "persist-tun" | "persist-key"
        | "persist-local-ip" | "persist-remote-ip" | "ifconfig" | "ifconfig-ipv6"
        | "ifconfig-nowarn" | "ifconfig-noexec" | "route-noexec" => Allow,
        // Liveness and sessions.
        "keepalive"
        | "ping"
        | "ping-restart"
        | "ping-exit"
        | "ping-timer-rem"
        | "inactive"
        | "explicit-exit-notify"
        | "hand-window"
        | "tran-window"
        | "reneg-sec"
        | "reneg-bytes"
        | "reneg-pkts"
        | "session-timeout"
        | "single-session"
        | "tls-exit"
        | "tls-timeout"
        | "remap-usr1"
        | "up-delay"
        | "up-restart"
        | "down-pre"
        | "nice"
        | "mlock" => Allow,
        // Cryptography and authentication.
        "cipher"
        | "data-ciphers"
        | "data-ciphers-fallback"
        | "ncp-ciphers"
        | "ncp-disable"
        | "auth"
        | "auth-nocache"
        | "auth-retry"
        | "auth-user-pass"
        | "auth-token"
        | "auth-token-user"
        | "askpass"
        | "static-challenge"
        | "key-direction"
        | "ca"
        | "capath"
        | "cert"
        | "key"
        | "extra-certs"
        | "pkcs12"
        | "tls-auth"
        | "tls-crypt"
        | "tls-crypt-v2"
        | "secret"
        | "tls-version-min"
        | "tls-version-max"
        | "tls-cipher"
        | "tls-ciphersuites"
        | "tls-groups"
        | "tls-cert-profile"
        | "ecdh-curve"
        | "remote-cert-tls"
        | "remote-cert-ku"
        | "remote-cert-eku"
        | "ns-cert-type"
        | "verify-x509-name"
        | "verify-hash"
        | "peer-fingerprint"
        | "crl-verify"
        | "x509-track"
        | "key-method"
        | "opt-verify"
        | "replay-window"
        | "no-replay"
        | "mute-replay-warnings"
        | "comp-lzo"
        | "compress"
        | "allow-compression"
        | "comp-noadapt"
        | "keying-material-exporter"
        | "push-peer-info"
        | "compat-mode" => Allow,
        // Routes and DNS: nsvpn's hook applies them inside the namespace.
        "route" | "route-ipv6" | "route-gateway" | "route-ipv6-gateway" | "route-metric"
        | "route-delay" | "route-nopull" | "max-routes" | "pull-filter" | "redirect-gateway"
        | "redirect-private" | "dhcp-option" | "dns" | "block-ipv6" | "allow-pull-fqdn" => Allow,
        // Windows-only settings, which openvpn on Linux ignores or refuses itself.
        "block-outside-dns" | "route-method" | "ip-win32" | "windows-driver" | "register-dns"
        | "dhcp-release" | "dhcp-renew" | "tap-sleep" | "show-net-up" => Allow,
        // Messages.
        "verb"
        | "mute"
        | "echo"
        | "suppress-timestamps"
        | "machine-readable-output"
        | "errors-to-stderr" => Allow,
        // Checked further by `check_option`.
        "setenv" | "setenv-safe" | "ignore-unknown-option" => Allow,

        // Replaced by nsvpn's own.
        "log" | "log-append" | "syslog" => Replace(LOG),
        "daemon" => Replace("nsvpn runs openvpn in the background itself"),
        "writepid" => Replace("nsvpn keeps openvpn's pid in /run/nsvpn/<profile>/state.json"),
        "status" | "status-version" => Replace(
            "`nsvpn status <profile>` shows the tunnel; openvpn writes no status file of its own",
        ),
        "management"
        | "management-log-cache"
        | "management-up-down"
        | "management-forget-disconnect"
        | "management-signal"
        | "management-hold"
        | "management-query-passwords"
        | "management-query-proxy"
        | "management-query-remote"
        | "management-client-user"
        | "management-client-group" => Replace(
            "nsvpn runs openvpn's management interface itself, on a root-only unix socket of the profile",
        ),
        "user" | "group" => Replace(
            "openvpn stays root so that it can hand the tunnel to nsvpn's hook again after every \
             reconnect (as nobody it could not, and the profile would die at the first reconnect); \
             it still runs no script but nsvpn's",
        ),

        // Refused.
        "up" | "down" | "route-up" | "route-pre-down" | "ipchange" => Refuse(HOOK_ONLY),
        "tls-verify" => Refuse("it runs a program on the host; use verify-x509-name instead"),
        "client-connect"
        | "client-disconnect"
        | "learn-address"
        | "auth-user-pass-verify"
        | "tls-crypt-v2-verify"
        | "client-crresponse" => Refuse(SERVER_SCRIPT),
        "script-security" => Refuse("nsvpn sets it so that only its own hook runs"),
        "plugin" => {
            Refuse("plugins run inside openvpn on the host (and may rewrite DNS or routes there)")
        }
        "engine" | "providers" | "pkcs11-providers" => Refuse(LOADS_CODE),
        "iproute" => Refuse("nsvpn configures the tunnel itself, over netlink"),
        "dev-node" => Refuse(
            "it makes openvpn open a device file of the .ovpn's choosing; openvpn opens /dev/net/tun by itself",
        ),
        "log-file" | "tls-export-cert" | "replay-persist" => Refuse(WRITES),
        "tmp-dir" => Refuse(
            "it makes openvpn, as root, write temporary files for scripts where the .ovpn says; nsvpn runs no such script",
        ),
        "cd" => Refuse(
            "nsvpn sets openvpn's directory itself (the .ovpn file's own), where the relative paths of the file are looked up",
        ),
        "chroot" => Refuse("nsvpn's hook must be reachable on every reconnect"),
        "management-client"
        | "management-client-auth"
        | "management-external-key"
        | "management-external-cert" => Refuse(
            "it makes openvpn wait for a management client, and nsvpn's own management interface answers no such request",
        ),
        "mktun" | "rmtun" | "genkey" | "show-ciphers" | "show-digests" | "show-tls"
        | "show-engines" | "show-groups" | "show-curves" | "show-gateway" | "show-adapters"
        | "show-valid-subnets" | "test-crypto" | "version" | "help" => Refuse(STANDALONE),
        _ => return None,
    })
}

/// `setenv NAME value` puts NAME in the environment of the scripts openvpn
/// runs, that is of nsvpn's hook, which runs as root: only names known to be
/// harmless (`LD_PRELOAD` would load a library into it).
fn setenv_name_allowed(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "FORWARD_COMPATIBLE",
        "CLIENT_CERT",
        "PUSH_PEER_INFO",
        "FRIENDLY_NAME",
        "USERNAME",
        "GENERIC_CONFIG",
        "ALLOW_PASSWORD_SAVE",
        "SERVER_ID",
    ];
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    NAMES.contains(&name)
        || ["UV_", "IV_"]
            .iter()
            .any(|p| name.strip_prefix(p).is_some_and(plain))
}

/// Options that openvpn accepts as a `<tag>` block.
const BLOCKS: &[&str] = &[
    "ca",
    "cert",
    "key",
    "extra-certs",
    "pkcs12",
    "tls-auth",
    "tls-crypt",
    "tls-crypt-v2",
    "secret",
    "crl-verify",
    "http-proxy-user-pass",
    "auth-user-pass",
    "peer-fingerprint",
    "connection",
];

/// C's isspace in the C locale, which openvpn's parser uses.
fn c_space(c: char) -> bool {
    c == ' ' || ('\t'..='\r').contains(&c)
}

/// Splits one line into words exactly as openvpn's `parse_line` does:
/// `#`/`;` start a comment where a word could start, "..." and '...' quote,
/// and a backslash outside single quotes escapes a backslash, a double
/// quote or a space (any other escape is an error, as in openvpn).
pub fn words(line: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum S {
        Initial,
        Unquoted,
        Quoted,
        Single,
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut state = S::Initial;
    let mut backslash = false;
    // openvpn walks the string up to and including its NUL.
    for c in line.chars().chain(std::iter::once('\0')) {
        let space = c == '\0' || c_space(c);
        if !backslash && c == '\\' && state != S::Single {
            backslash = true;
            continue;
        }
        let mut keep = None;
        let mut done = false;
        match state {
            S::Initial if !space => {
                if c == '#' || c == ';' {
                    break;
                }
                if !backslash && c == '"' {
                    state = S::Quoted;
                } else if !backslash && c == '\'' {
                    state = S::Single;
                } else {
                    keep = Some(c);
                    state = S::Unquoted;
                }
            }
            S::Initial => {}
            S::Unquoted if !backslash && space => done = true,
            S::Quoted if !backslash && c == '"' => done = true,
            S::Single if c == '\'' => done = true,
            S::Unquoted | S::Quoted | S::Single => keep = Some(c),
        }
        if done {
            out.push(std::mem::take(&mut cur));
            state = S::Initial;
        }
        if backslash
            && let Some(k) = keep
            && !(k == '\\' || k == '"' || k == '\0' || c_space(k))
        {
            return Err(format!(
                "a backslash before {k:?}: openvpn allows it only before a backslash, a double quote or a space"
            ));
        }
        backslash = false;
        if let Some(k) = keep {
            if k == '\0' {
                break;
            }
            cur.push(k);
        }
    }
    match state {
        S::Quoted => return Err("no closing double quote".into()),
        S::Single => return Err("no closing single quote".into()),
        _ => {}
    }
    Ok(out)
}

/// Writes a word so that openvpn's parser reads it back unchanged.
fn quote(w: &str) -> String {
    let plain = !w.is_empty()
        && !w
            .chars()
            .any(|c| c_space(c) || matches!(c, '"' | '\'' | '\\' | '#' | ';'));
    if plain {
        w.to_string()
    } else {
        let mut s = String::from("\"");
        for c in w.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    }
}

/// One option as openvpn sees it.
struct Opt {
    /// "line 4" or "other.conf line 4", for messages.
    at: String,
    /// The line's number in its file.
    line: usize,
    words: Vec<String>,
    /// The lines of a `<tag>` block (the tag is words[0]).
    block: Option<Vec<String>>,
}

/// A line of the file: an option, or nothing for openvpn (blank, comment).
enum Item {
    Blank,
    Opt(Opt),
}

/// Splits a file's text into openvpn's items. `prefix` names the file in
/// messages ("" for the profile's own file); `offset` is the number of the
/// line before the text's first (for a block's text).
fn items(text: &str, prefix: &str, offset: usize, errors: &mut Vec<String>) -> Vec<Item> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // A text ending in a newline has no line after it.
    let count = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let at = |n: usize| format!("{prefix}line {}", n + offset);
    let mut out = Vec::new();
    let mut i = 0;
    while i < count {
        let n = i + 1;
        let line = lines[i];
        i += 1;
        if let Some(e) = line_problem(line) {
            errors.push(format!("{}: {e}", at(n)));
            out.push(Item::Blank);
            continue;
        }
        let mut w = match words(line) {
            Ok(w) => w,
            Err(e) => {
                errors.push(format!("{}: {e}", at(n)));
                out.push(Item::Blank);
                continue;
            }
        };
        if w.is_empty() {
            out.push(Item::Blank);
            continue;
        }
        if w.len() > MAX_WORDS {
            errors.push(format!(
                "{}: more than {MAX_WORDS} words; openvpn would silently drop the rest",
                at(n)
            ));
            out.push(Item::Blank);
            continue;
        }
        if w[0].len() >= 3 && w[0].starts_with("--") {
            w[0].drain(..2);
        }
        let tag = (w.len() == 1 && w[0].len() >= 2 && w[0].starts_with('<') && w[0].ends_with('>'))
            .then(|| w[0][1..w[0].len() - 1].to_string());
        let Some(tag) = tag else {
            out.push(Item::Opt(Opt {
                at: at(n),
                line: n + offset,
                words: w,
                block: None,
            }));
            continue;
        };
        // The block runs to the first line that starts, after blanks, with
        // the closing tag (openvpn ignores the rest of that line).
        let close = format!("</{tag}>");
        let start = i;
        while i < count && !lines[i].trim_start_matches(c_space).starts_with(&close) {
            i += 1;
        }
        if i == count {
            errors.push(format!("{}: `<{tag}>` has no closing `{close}`", at(n)));
            break;
        }
        let body: Vec<String> = lines[start..i].iter().map(|l| l.to_string()).collect();
        for (k, l) in body.iter().enumerate() {
            if let Some(e) = line_problem(l) {
                errors.push(format!("{}: {e}", at(start + k + 1)));
            }
        }
        i += 1;
        out.push(Item::Opt(Opt {
            at: at(n),
            line: n + offset,
            words: vec![tag],
            block: Some(body),
        }));
    }
    out
}

fn line_problem(line: &str) -> Option<String> {
    if line.contains('\0') {
        return Some("a NUL byte (openvpn would stop reading the line there)".into());
    }
    (line.len() > MAX_LINE).then(|| {
        format!(
            "{} bytes long; openvpn reads lines of at most {MAX_LINE}",
            line.len()
        )
    })
}

/// Walks the items of one file (or block), checking each option and
/// rendering what openvpn will read.
struct Checker<'a, 'l> {
    load: &'a mut Loader<'l>,
    cfg: OvpnConfig,
    errors: Vec<String>,
    warnings: Vec<String>,
    /// Options seen, for what the file implies (default port and proto).
    port: Option<String>,
    proto: Option<String>,
    remotes: Vec<(String, Option<String>, Option<String>)>,
    /// Options left out, by the reason: ("line 3 `log`", ...).
    replaced: Vec<(&'static str, Vec<String>)>,
}

impl Checker<'_, '_> {
    /// Checks and renders one file (or `<connection>` block); `config FILE`
    /// lines are followed: the included file's options are checked the same
    /// way and take the line's place.
    fn file(
        &mut self,
        text: &str,
        prefix: &str,
        offset: usize,
        depth: usize,
        out: &mut Vec<String>,
    ) {
        for item in items(text, prefix, offset, &mut self.errors) {
            match item {
                Item::Blank => out.push(String::new()),
                Item::Opt(o) if o.words[0] == "config" && o.block.is_none() => {
                    self.include(&o, depth, out)
                }
                Item::Opt(o) => self.option(o, prefix, depth, out),
            }
        }
    }

    fn refuse(&mut self, at: &str, what: &str, why: &str) {
        self.errors.push(format!(
            "{at}: `{what}` is not allowed: {why}; remove the line"
        ));
    }

    fn option(&mut self, o: Opt, prefix: &str, depth: usize, out: &mut Vec<String>) {
        let Opt {
            at,
            line,
            words,
            block,
        } = o;
        // The lines the option took in the file, kept as empty lines when
        // openvpn is not to see it.
        let took = block.as_ref().map_or(1, |b| b.len() + 2);
        let blank = |out: &mut Vec<String>| out.extend(std::iter::repeat_n(String::new(), took));
        // `setenv opt X ...` is option X, which an openvpn that does not
        // know X ignores.
        let (optional, w) = if words.len() >= 3 && words[0] == "setenv" && words[1] == "opt" {
            (true, &words[2..])
        } else {
            (false, &words[..])
        };
        let opt = w[0].as_str();
        let args = &w[1..];
        let shown = if optional {
            format!("setenv opt {opt}")
        } else {
            opt.to_string()
        };
        match rule(opt) {
            None => {
                self.errors.push(format!(
                    "{at}: `{shown}` is not an option nsvpn knows to be safe in a client's .ovpn \
                     (it decides by a list of client options that run no program and write no file \
                     on the host); remove the line"
                ));
                blank(out);
            }
            Some(Rule::Refuse(why)) => {
                self.refuse(&at, &shown, why);
                blank(out);
            }
            Some(Rule::Replace(how)) => {
                match self.replaced.iter_mut().find(|(h, _)| *h == how) {
                    Some((_, lines)) => lines.push(format!("{at} `{shown}`")),
                    None => self.replaced.push((how, vec![format!("{at} `{shown}`")])),
                }
                blank(out);
            }
            Some(Rule::Allow) => {
                if block.is_some() && !BLOCKS.contains(&opt) {
                    self.errors.push(format!(
                        "{at}: `<{opt}>` is not a block openvpn takes; write `{opt}` as a line"
                    ));
                    blank(out);
                    return;
                }
                if !self.arguments(&at, opt, args, block.is_some()) {
                    blank(out);
                    return;
                }
                match block {
                    Some(lines) if opt == "connection" => {
                        out.push("<connection>".into());
                        let inner = lines.join("\n");
                        let mut body = Vec::new();
                        self.file(&inner, prefix, line, depth, &mut body);
                        out.extend(body);
                        out.push("</connection>".into());
                    }
                    Some(lines) => {
                        out.push(format!("<{opt}>"));
                        out.extend(lines);
                        out.push(format!("</{opt}>"));
                    }
                    None => {
                        let mut line: Vec<String> = Vec::new();
                        if optional {
                            line.extend(["setenv".into(), "opt".into()]);
                        }
                        line.extend(w.iter().map(|x| quote(x)));
                        out.push(line.join(" "));
                    }
                }
            }
        }
    }

    /// Checks an allowed option's arguments and notes what nsvpn needs to
    /// know. False when the line must not reach openvpn.
    fn arguments(&mut self, at: &str, opt: &str, args: &[String], block: bool) -> bool {
        let first = args.first().map(String::as_str);
        match opt {
            "dev" if first.is_some_and(|d| d.starts_with("tap")) => {
                self.errors.push(format!(
                    "{at}: `dev {}`: nsvpn runs routed (tun) OpenVPN tunnels, not tap bridges",
                    args[0]
                ));
                return false;
            }
            "dev-type" if first.is_some_and(|d| d != "tun") => {
                self.errors.push(format!(
                    "{at}: `dev-type {}`: nsvpn runs routed (tun) OpenVPN tunnels only",
                    args[0]
                ));
                return false;
            }
            "mode" if first != Some("p2p") => {
                self.refuse(at, "mode", "nsvpn runs openvpn as a client (mode p2p)");
                return false;
            }
            "setenv" => {
                let name = first.unwrap_or("");
                if !setenv_name_allowed(name) {
                    self.errors.push(format!(
                        "{at}: `setenv {name}` is not allowed: it would put {name} in the environment \
                         of nsvpn's hook, which runs as root, and nsvpn allows only names known to be \
                         harmless there (UV_*, IV_*, CLIENT_CERT, PUSH_PEER_INFO...); remove the line"
                    ));
                    return false;
                }
            }
            "auth-user-pass" => self.cfg.prompts_for_password = args.is_empty() && !block,
            "proto" => self.proto = first.map(String::from),
            "port" | "rport" => self.port = first.map(String::from),
            "remote" => self.remotes.push((
                first.unwrap_or("").to_string(),
                args.get(1).cloned(),
                args.get(2).cloned(),
            )),
            "explicit-exit-notify" => self.cfg.explicit_exit_notify = true,
            "verb" => self.cfg.verb = first.and_then(|v| v.parse().ok()),
            "redirect-gateway" | "redirect-private" => {
                self.cfg.redirect_gateway = Some(args.to_vec())
            }
            "route-nopull" => self.cfg.route_nopull = true,
            "persist-tun" => self.cfg.persist_tun = true,
            "server-poll-timeout" | "connect-timeout" => self.cfg.sets_server_timeout = true,
            _ => {}
        }
        true
    }
}

/// Checks a `.ovpn` file's text. `load` reads the files its `config` lines
/// include. Errors name the line and say what to do, all at once.
pub fn check(text: &str, load: &mut Loader) -> Result<Checked, Vec<String>> {
    let mut c = Checker {
        load,
        cfg: OvpnConfig::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
        port: None,
        proto: None,
        remotes: Vec::new(),
        replaced: Vec::new(),
    };
    let mut out = Vec::new();
    c.file(text, "", 0, 0, &mut out);
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let port = c.port.clone().unwrap_or_else(|| "1194".into());
    let proto = c.proto.clone().unwrap_or_else(|| "udp".into());
    c.cfg.remotes = c
        .remotes
        .iter()
        .map(|(host, p, pr)| {
            format!(
                "{host} {}/{}",
                p.as_deref().unwrap_or(&port),
                pr.as_deref().unwrap_or(&proto)
            )
        })
        .collect();
    c.cfg.udp_only = if c.remotes.is_empty() {
        proto.starts_with("udp")
    } else {
        c.remotes
            .iter()
            .all(|(_, _, pr)| pr.as_deref().unwrap_or(&proto).starts_with("udp"))
    };
    c.warnings = c
        .replaced
        .iter()
        .map(|(how, lines)| {
            let verb = if lines.len() == 1 { "is" } else { "are" };
            format!("{} {verb} left out: {how}", lines.join(", "))
        })
        .collect();
    let mut text = out.join("\n");
    text.push('\n');
    Ok(Checked {
        text,
        config: c.cfg,
        warnings: c.warnings,
    })
}

impl Checker<'_, '_> {
    fn include(&mut self, o: &Opt, depth: usize, out: &mut Vec<String>) {
        let [_, path] = o.words.as_slice() else {
            self.errors
                .push(format!("{}: `config` takes one file name", o.at));
            return;
        };
        if depth + 1 >= MAX_INCLUDE_DEPTH {
            self.errors.push(format!(
                "{}: `config {path}`: more than {MAX_INCLUDE_DEPTH} levels of included files \
                 (does a file include itself?)",
                o.at
            ));
            return;
        }
        match (self.load)(path) {
            Ok((label, text)) => {
                let prefix = format!("{label} ");
                self.file(&text, &prefix, 0, depth + 1, out);
            }
            Err(e) => self.errors.push(format!("{}: `config {path}`: {e}", o.at)),
        }
    }
}

/// A loader for texts with no includes (tests, fuzzing).
pub fn no_includes(path: &str) -> Result<(String, String), String> {
    Err(format!(
        "cannot read {path}: included files are not available here"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<Checked, Vec<String>> {
        check(text, &mut no_includes)
    }

    /// An AWS Client VPN-style file, as providers hand them out: CRLF,
    /// inline credentials, `remote-random-hostname`, TCP 443, `setenv opt`,
    /// `user`/`group`, a log file.
    const PROVIDER: &str = "client\r\ndev tun\r\nproto tcp\r\nremote cvpn-endpoint-0123.prod.clientvpn.us-east-1.amazonaws.com 443\r\n\
        remote-random-hostname\r\nresolv-retry infinite\r\nnobind\r\npersist-key\r\npersist-tun\r\n\
        remote-cert-tls server\r\ncipher AES-256-GCM\r\nverb 3\r\nuser nobody\r\ngroup nogroup\r\n\
        setenv opt block-outside-dns\r\nsetenv CLIENT_CERT 0\r\nlog-append /var/log/openvpn.log\r\n\
        auth-user-pass\r\nreneg-sec 0\r\n<ca>\r\n-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n</ca>\r\n\
        <cert>\r\n-----BEGIN CERTIFICATE-----\r\nMIIC\r\n-----END CERTIFICATE-----\r\n</cert>\r\n\
        <key>\r\n-----BEGIN PRIVATE KEY-----\r\nMIID\r\n-----END PRIVATE KEY-----\r\n</key>\r\n\
        <tls-crypt>\r\n-----BEGIN OpenVPN Static key V1-----\r\nabcd\r\n-----END OpenVPN Static key V1-----\r\n</tls-crypt>\r\n";

    #[test]
    fn words_follow_openvpns_parser() {
        assert_eq!(
            words(r#"remote "a b" 1194 # c"#).unwrap(),
            ["remote", "a b", "1194"]
        );
        assert_eq!(words(r"up '/x y/z'").unwrap(), ["up", "/x y/z"]);
        assert_eq!(words(r"setenv A b\ c").unwrap(), ["setenv", "A", "b c"]);
        assert_eq!(words(r#"x "a\"b\\c""#).unwrap(), ["x", r#"a"b\c"#]);
        assert_eq!(words("x a#b ;c").unwrap(), ["x", "a#b"]);
        assert_eq!(words("x \"\"").unwrap(), ["x", ""]);
        assert!(words("; comment").unwrap().is_empty());
        // A backslash before a comment sign still starts a comment, as in openvpn.
        assert_eq!(words(r"x \#y").unwrap(), ["x"]);
        // Only C's blanks separate words (a no-break space does not).
        assert_eq!(words("up\u{a0}/bin/x").unwrap(), ["up\u{a0}/bin/x"]);
        assert_eq!(words("up\x0b/bin/x").unwrap(), ["up", "/bin/x"]);
        assert!(words(r"x \n").is_err());
        assert!(words("x \"open").is_err());
        assert!(words("x 'open").is_err());
    }

    #[test]
    fn a_provider_file_passes_with_what_nsvpn_replaces_said() {
        let c = check_text(PROVIDER).unwrap();
        assert!(c.config.prompts_for_password && c.config.persist_tun && !c.config.udp_only);
        assert_eq!(
            c.config.remotes,
            ["cvpn-endpoint-0123.prod.clientvpn.us-east-1.amazonaws.com 443/tcp"]
        );
        insta::assert_snapshot!(c.warnings.join("\n"));
        // What openvpn reads: no CR, the replaced lines empty, the same line numbers.
        assert!(!c.text.contains('\r'));
        assert_eq!(c.text.lines().count(), PROVIDER.lines().count());
        let lines: Vec<&str> = c.text.lines().collect();
        assert_eq!(lines[12], "", "user nobody is left out");
        assert_eq!(lines[14], "setenv opt block-outside-dns");
        assert_eq!(lines[16], "", "log-append is left out");
        assert!(
            c.text
                .contains("<key>\n-----BEGIN PRIVATE KEY-----\nMIID\n")
        );
    }

    #[test]
    fn every_way_to_smuggle_a_script_is_refused() {
        let bad = "\u{feff}up /tmp/x\n\
            setenv opt down /tmp/x\n\
            --route-up /tmp/x\n\
            \"ipchange\" /tmp/x\n\
            'tls-verify' /tmp/x\n\
            setenv opt setenv opt route-pre-down /tmp/x\n\
            <connection>\n\
            remote a 1194\n\
            up /tmp/x\n\
            </connection>\n\
            <up>\n\
            /tmp/x\n\
            </up>\n\
            plugin /usr/lib/x.so\n\
            script-security 3\n\
            setenv LD_PRELOAD /tmp/x.so\n\
            engine dynamic\n\
            providers legacy\n\
            dev tap0\n";
        insta::assert_snapshot!(check_text(bad).unwrap_err().join("\n"));
    }

    #[test]
    fn options_that_make_root_write_or_listen_are_refused_or_replaced() {
        let text = "client\nremote a 1194\nlog /tmp/l\nlog-append /tmp/l\nstatus /tmp/s 10\n\
                    writepid /tmp/p\nmanagement 0.0.0.0 7505\ndaemon\nsyslog\n\
                    cd /tmp\nchroot /var/empty\ntmp-dir /tmp\nreplay-persist /tmp/r\n\
                    tls-export-cert /tmp\nmanagement-external-key\n";
        insta::assert_snapshot!(check_text(text).unwrap_err().join("\n"));
        let replaced = "client\nremote a 1194\nlog /tmp/l\nstatus /tmp/s 10\nwritepid /tmp/p\n\
                        management 0.0.0.0 7505\ndaemon\nuser nobody\ngroup nogroup\n";
        let c = check_text(replaced).unwrap();
        insta::assert_snapshot!("replaced", c.warnings.join("\n"));
        assert_eq!(c.text, "client\nremote a 1194\n\n\n\n\n\n\n\n");
    }

    #[test]
    fn unknown_and_server_options_are_refused_by_name_all_at_once() {
        let text = "client\nserver 10.8.0.0 255.255.255.0\npush \"route 10.0.0.0 255.0.0.0\"\n\
                    colour blue\nmode server\nremote a 1194\n";
        let errs = check_text(text).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("line 2: `server` is not an option nsvpn knows to be safe"));
        assert!(errs[2].starts_with("line 4: `colour`"));
        assert!(errs[3].starts_with("line 5: `mode` is not allowed"));
    }

    #[test]
    fn blocks_and_connections() {
        let text = "client\n<connection>\nremote a 1194 udp\n</connection>\n<connection>\n\
                    remote b 443 tcp\nconnect-timeout 5\n</connection>\n  <ca>\nPEM\n  </ca> trailing\n\
                    <auth-user-pass>\nalice\npw\n</auth-user-pass>\n";
        let c = check_text(text).unwrap();
        assert_eq!(c.config.remotes, ["a 1194/udp", "b 443/tcp"]);
        assert!(c.config.sets_server_timeout && !c.config.udp_only);
        assert!(!c.config.prompts_for_password, "credentials inline");
        assert_eq!(c.text.lines().count(), text.lines().count());
        assert!(
            c.text
                .contains("<connection>\nremote b 443 tcp\nconnect-timeout 5\n</connection>")
        );
        assert!(c.text.contains("<ca>\nPEM\n</ca>\n"));
        // A block that is never closed, a block of an option that takes no block.
        let errs = check_text("client\n<ca>\nPEM\n").unwrap_err();
        assert_eq!(errs, ["line 2: `<ca>` has no closing `</ca>`"]);
        let errs = check_text("client\n<remote>\na\n</remote>\n").unwrap_err();
        assert!(errs[0].contains("`<remote>` is not a block openvpn takes"));
    }

    #[test]
    fn lines_openvpn_would_read_otherwise_are_refused() {
        // Split by openvpn's 256-byte buffer, the second half of a long line
        // inside a block could close the block early.
        let long = format!("client\n<ca>\n{}</ca>\nup /tmp/x\n</ca>\n", "A".repeat(255));
        let errs = check_text(&long).unwrap_err();
        assert!(
            errs.iter().any(|e| e.starts_with("line 3: 260 bytes long")),
            "{errs:?}"
        );
        let many = format!("remote {}\n", vec!["a"; 16].join(" "));
        assert!(check_text(&many).unwrap_err()[0].contains("more than 16 words"));
        assert!(check_text("client\nremote a\0b\n").unwrap_err()[0].contains("NUL"));
    }

    #[test]
    fn setenv_names_are_an_allow_list_too() {
        assert!(check_text("setenv UV_ID 12\nsetenv IV_GUI_VER x\nsetenv FORWARD_COMPATIBLE 1\nsetenv-safe X y\n").is_ok());
        for name in [
            "LD_PRELOAD",
            "PATH",
            "GLIBC_TUNABLES",
            "dev",
            "route_network_1",
            "UV_",
            "opt",
        ] {
            assert!(check_text(&format!("setenv {name} x\n")).is_err(), "{name}");
        }
    }

    #[test]
    fn what_openvpn_reads_parses_back_to_the_same_words() {
        let text = "remote \"a b\" 1194\nverify-x509-name 'CN=x \"y\"; z' name\nhttp-proxy-option AGENT a\\\\b\n";
        let c = check_text(text).unwrap();
        let orig: Vec<Vec<String>> = text.lines().map(|l| words(l).unwrap()).collect();
        let back: Vec<Vec<String>> = c.text.lines().map(|l| words(l).unwrap()).collect();
        assert_eq!(orig, back);
    }

    #[test]
    fn includes_are_followed_and_checked() {
        let mut files = |p: &str| match p {
            "common.conf" => Ok((
                "common.conf".into(),
                "remote-cert-tls server\nconfig deeper.conf\n".into(),
            )),
            "deeper.conf" => Ok(("deeper.conf".into(), "verb 4\nup /tmp/x\n".into())),
            "self.conf" => Ok(("self.conf".into(), "config self.conf\n".into())),
            other => Err(format!("cannot read {other}: no such file")),
        };
        let errs = check(
            "client\nconfig common.conf\nconfig missing.conf\n",
            &mut files,
        )
        .unwrap_err();
        insta::assert_snapshot!(errs.join("\n"));
        let errs = check("config self.conf\n", &mut files).unwrap_err();
        assert!(errs[0].contains("levels of included files"), "{errs:?}");
        let c = check("client\nconfig common.conf\n", &mut |_: &str| {
            Ok(("c.conf".to_string(), "verb 4\n".to_string()))
        })
        .unwrap();
        assert_eq!(c.text, "client\nverb 4\n");
        assert_eq!(c.config.verb, Some(4));
    }
}
