//! OpenVPN: the user's `.ovpn` file, checked so that nothing in it can act
//! on the host ([`config`]); the command line nsvpn runs `openvpn` with
//! (nsvpn's hook as the only script); the hook's environment read into a
//! [`TunnelSetup`]; openvpn's log read for the reason a connection failed;
//! and its management interface asked how the connection stands
//! ([`management`]).

pub mod config;
pub mod management;

pub use config::{Checked, OvpnConfig};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::backend::client::hook::{LogReason, env_get as get, log_reason};
use crate::backend::client::{Launch, last_error};
use crate::backend::vpn::{RawVpn, Vpn};
use crate::backend::{Reconnect, at, check_secret, find_client, hook_exe, read_config};
use crate::ipnet::{IpNet, netmask_prefix};
use crate::names::Names;
use crate::paths;
use crate::profile::{Profile, Source};
use crate::state::State;
use crate::trust;
use crate::tunnel::{TunAddr, TunnelSetup};
use crate::util;

pub const PROGRAM: &str = "openvpn";

/// Quotes a word for openvpn's own command-line parser (used for `--up`).
fn quote(s: &str) -> Option<String> {
    (!s.contains(['"', '\\', '\n'])).then(|| format!("\"{s}\""))
}

/// openvpn reads the checked copy of the `.ovpn` on this descriptor
/// (a sealed memfd: the copy holds the file's keys and never touches a disk).
pub const CONFIG_FD: i32 = 3;

/// What nsvpn runs openvpn with.
pub struct Command<'a> {
    /// The user's `.ovpn` (its directory is openvpn's, for relative paths).
    pub config: &'a Path,
    pub cfg: &'a OvpnConfig,
    pub tunnel: &'a str,
    pub profile: &'a str,
    pub hook_exe: &'a Path,
    pub auth_file: Option<&'a Path>,
    pub management: &'a Path,
    /// How long `up` waits for the connection.
    pub wait: Duration,
}

/// How long openvpn tries one server before the next, when the file lists
/// several and does not say: openvpn's own default (up to two minutes)
/// would spend `up`'s whole wait on the first. Each server gets an equal
/// share of the wait, between 5 and 10 s.
pub fn server_poll_timeout(cfg: &OvpnConfig, wait: Duration) -> Option<u64> {
    let n = cfg.remotes.len() as u64;
    (n > 1 && !cfg.sets_server_timeout).then(|| (wait.as_secs() / n).clamp(5, 10))
}

/// How long `up` waits: at least the asked wait, and long enough for every
/// server to get its turn.
pub fn wait_for(cfg: &OvpnConfig, wait: Duration) -> Duration {
    match server_poll_timeout(cfg, wait) {
        Some(per) => wait.max(Duration::from_secs(per * cfg.remotes.len() as u64 + 2)),
        None => wait,
    }
}

/// The command line nsvpn runs: the checked copy of the user's file, then
/// nsvpn's options, which come later and so win.
pub fn client_args(l: &Command) -> Result<Vec<OsString>, String> {
    let exe = quote(&l.hook_exe.to_string_lossy()).ok_or_else(|| {
        format!(
            "nsvpn's own path {} contains a quote or backslash; openvpn could not run it as its hook",
            l.hook_exe.display()
        )
    })?;
    let dir = l.config.parent().unwrap_or(Path::new("/"));
    let mut a: Vec<OsString> = vec![
        "--cd".into(),
        dir.into(),
        "--config".into(),
        format!("/proc/self/fd/{CONFIG_FD}").into(),
        "--dev".into(),
        l.tunnel.into(),
        "--dev-type".into(),
        "tun".into(),
        "--disable-dco".into(),
        "--ifconfig-noexec".into(),
        "--route-noexec".into(),
        "--script-security".into(),
        "2".into(),
        "--up".into(),
        format!("{exe} hook openvpn {}", l.profile).into(),
        "--up-restart".into(),
        "--management".into(),
        l.management.into(),
        "unix".into(),
        "--management-client-user".into(),
        "root".into(),
    ];
    if let Some(f) = l.auth_file {
        a.extend(["--auth-user-pass".into(), f.into()]);
    }
    // The hook reads the pushed options (redirect-gateway is not in the
    // script environment) from the log, where openvpn writes them at verb 3.
    if l.cfg.verb.is_none_or(|v| v < 3) {
        a.extend(["--verb".into(), "3".into()]);
    }
    if l.cfg.udp_only && !l.cfg.explicit_exit_notify {
        a.extend(["--explicit-exit-notify".into(), "1".into()]);
    }
    if let Some(s) = server_poll_timeout(l.cfg, l.wait) {
        a.extend(["--server-poll-timeout".into(), s.to_string().into()]);
    }
    Ok(a)
}

/// What openvpn logs when a SIGTERM makes it send its exit notification.
const GOODBYE_LINE: &str = "sending exit notification to peer";
/// How long `down` waits for openvpn to send its goodbye before it ends it
/// anyway: openvpn does it in the same turn of its loop, within
/// milliseconds.
const GOODBYE_WAIT: Duration = Duration::from_millis(200);

/// Ends openvpn without the second it lingers after its goodbye. On SIGTERM
/// a UDP client sends its exit notification at once, then waits
/// `explicit-exit-notify` seconds (at least one) before it exits; a second
/// SIGTERM in that time ends it at once (openvpn's `process_sigterm`). Its
/// log says when it starts the notification; the packet leaves in the turn
/// of its event loop after that line, before the loop sleeps again. So:
/// SIGTERM, then wait until the line is in its log and openvpn sleeps
/// (state S in /proc), then the second SIGTERM. The server sees the
/// notification (suite-clients.sh checks its log), and `down` does not
/// wait the second. Over TCP there is no notification: openvpn ends on the
/// first SIGTERM.
pub fn end(profile: &str, pid: u32, ending: &mut crate::ending::Ending) {
    use nix::sys::signal::Signal;
    let log = paths::log_file(profile, PROGRAM);
    let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    if !ending.signal(pid, Signal::SIGTERM, super::CLIENT_GRACE) {
        return;
    }
    let start = Instant::now();
    let mut said = false;
    while start.elapsed() < GOODBYE_WAIT && crate::util::alive(pid) {
        said = said || logged_since(&log, from, GOODBYE_LINE);
        if said && sleeping(pid) {
            crate::vtrace!("openvpn sent its exit notification");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM);
            return;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Whether `log`, from byte `from` on, has a line containing `what`.
fn logged_since(log: &Path, from: u64, what: &str) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut tail = String::new();
    std::fs::File::open(log)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(from))?;
            f.take(64 * 1024).read_to_string(&mut tail)
        })
        .is_ok()
        && tail.contains(what)
}

/// Whether `pid` sleeps (state S: waiting in its event loop).
fn sleeping(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('S'))
    })
}

/// The servers openvpn tried, in the order of its log ("203.0.113.10:1194").
pub fn remotes_tried(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in log.lines() {
        let Some(i) = l
            .find("link remote: ")
            .map(|i| i + "link remote: ".len())
            .or_else(|| {
                l.find("Attempting to establish TCP connection with ")
                    .map(|i| i + "Attempting to establish TCP connection with ".len())
            })
        else {
            continue;
        };
        let addr = l[i..].split_whitespace().next().unwrap_or("");
        let addr = addr.rsplit(']').next().unwrap_or(addr).to_string();
        if !addr.is_empty() && !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// Reads the `.ovpn` (and the files it includes) as openvpn would, checks
/// it, and hands openvpn the checked copy on a sealed memfd.
/// The `[vpn]` fields this kind takes.
pub const FIELDS: &[&str] = &["config", "auth_file"];

/// `[vpn]` with kind = "openvpn": the .ovpn file and `auth_file`.
pub(crate) fn settings(src: &Source, v: RawVpn) -> Result<Vpn> {
    let config = v
        .config
        .ok_or_else(|| src.field("vpn.config", "is missing: name the .ovpn file".into()))?;
    Ok(Vpn::OpenVpn {
        config: src.file("vpn.config", &config)?,
        auth_file: v
            .auth_file
            .map(|a| src.file("vpn.auth_file", &a))
            .transpose()?,
    })
}

pub fn prepare(
    profile: &Profile,
    config: &Path,
    auth_file: Option<&Path>,
    wait: Duration,
) -> Result<Launch> {
    let text = read_config(profile, "vpn.config", config)?;
    let dir = config.parent().unwrap_or(Path::new("/"));
    let mut load = |name: &str| -> std::result::Result<(String, String), String> {
        let path = dir.join(name);
        trust::check(
            &path,
            &at(profile, "vpn.config"),
            trust::Role::field(profile, "vpn.config"),
        )
        .map_err(|e| format!("{e:#}"))?;
        std::fs::read_to_string(&path)
            .map(|t| (path.display().to_string(), t))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let checked = config::check(&text, &mut load).map_err(|errs| {
        anyhow!(
            "{} ({}): this .ovpn file could act on the host or take the tunnel out of nsvpn's hands:\n  {}",
            at(profile, "vpn.config"),
            config.display(),
            errs.join("\n  ")
        )
    })?;
    for w in &checked.warnings {
        eprintln!("nsvpn: warning: {}: {w}", config.display());
    }
    let cfg = checked.config;
    if cfg.prompts_for_password && auth_file.is_none() {
        bail!(
            "{}: {} asks for a user name and password (`auth-user-pass` with no file), and nsvpn runs openvpn \
             without a terminal: put the user name and the password on two lines of a root-only file and \
             name it in the profile",
            at(profile, "vpn.auth_file"),
            config.display()
        );
    }
    if let Some(a) = auth_file {
        check_secret(profile, "vpn.auth_file", a)?;
        std::fs::File::open(a)
            .with_context(|| format!("{} ({})", at(profile, "vpn.auth_file"), a.display()))?;
    }
    let path = find_client(PROGRAM)?;
    let names = Names::for_profile(&profile.name);
    let wait = wait_for(&cfg, wait);
    let args = client_args(&Command {
        config,
        cfg: &cfg,
        tunnel: &names.tunnel,
        profile: &profile.name,
        hook_exe: &hook_exe()?,
        auth_file,
        management: &paths::openvpn_management(&profile.name),
        wait,
    })
    .map_err(|e| anyhow!(e))?;
    Ok(Launch {
        program: PROGRAM,
        path,
        args,
        stdin: None,
        fd3: Some(util::sealed_memfd("nsvpn-ovpn", checked.text.as_bytes())?),
        wait,
        label: "OpenVPN",
        failure_reason,
        openvpn: Some(cfg),
    })
}

/// Whether openvpn is reconnecting, as its management socket says. An
/// error when it cannot be asked (the socket is root's alone).
pub fn reconnecting(profile: &str) -> Result<Option<Reconnect>, String> {
    use management::Connection;
    let states =
        management::query(&paths::openvpn_management(profile)).map_err(|e| format!("{e:#}"))?;
    Ok(match management::connection(&states) {
        Some(Connection::Reconnecting { since, now, reason }) => Some(Reconnect {
            since,
            last_error: last_error(profile, PROGRAM, failure_reason).or_else(|| {
                Some(format!(
                    "openvpn {}{}",
                    now.to_lowercase(),
                    reason.map(|r| format!(" after {r}")).unwrap_or_default()
                ))
            }),
        }),
        Some(Connection::Connected { .. }) | None => None,
    })
}

/// "; servers tried: ...; not tried yet: ..." when the file lists several.
pub fn servers_tried(cfg: &OvpnConfig, log: &str) -> String {
    if cfg.remotes.len() < 2 {
        return String::new();
    }
    let tried = remotes_tried(log);
    format!(
        "\nthe .ovpn lists {} servers ({}); openvpn tried {}{}",
        cfg.remotes.len(),
        cfg.remotes.join(", "),
        if tried.is_empty() {
            "none of them".to_string()
        } else {
            tried.join(", ")
        },
        {
            let pending: Vec<&str> = cfg
                .remotes
                .iter()
                .filter(|r| {
                    let (host, rest) = r.split_once(' ').unwrap_or((r, ""));
                    let port = rest.split('/').next().unwrap_or("");
                    !tried.contains(&format!("{host}:{port}"))
                })
                .map(String::as_str)
                .collect();
            if pending.is_empty() || tried.is_empty() {
                String::new()
            } else {
                format!("; not tried yet: {}", pending.join(", "))
            }
        }
    )
}

/// What openvpn's `up` script environment says of the tunnel (with the
/// pushed options from the log), and the event: `connect`, or `restart`
/// after a reconnect.
pub fn hook_event(
    profile: &str,
    st: &State,
    env: &BTreeMap<String, String>,
) -> Result<Option<(TunnelSetup, &'static str)>> {
    let script_type = env.get("script_type").map(String::as_str).unwrap_or("");
    if script_type != "up" {
        bail!(
            "openvpn called the hook with script_type={script_type:?}; nsvpn only installs it as the up script"
        );
    }
    let log = std::fs::read_to_string(paths::log_file(profile, PROGRAM)).unwrap_or_default();
    let pushed = last_push_reply(&log);
    let cfg = st.backend.openvpn.clone().unwrap_or_default();
    let setup = setup_from_env(env, pushed.as_deref(), &cfg).map_err(|e| anyhow!(e))?;
    let event = if env.get("script_context").is_some_and(|c| c == "restart") {
        "restart"
    } else {
        "connect"
    };
    Ok(Some((setup, event)))
}

/// The options of the last PUSH_REPLY in openvpn's log.
pub fn last_push_reply(log: &str) -> Option<Vec<String>> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("PUSH: Received control message: 'PUSH_REPLY"))?;
    let start = line.find("PUSH_REPLY")? + "PUSH_REPLY".len();
    let body = line[start..].trim_end().trim_end_matches('\'');
    Some(
        body.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// Whether `redirect-gateway` flags send IPv4 / IPv6 default traffic into
/// the tunnel.
fn redirect_families(flags: &[String]) -> (bool, bool) {
    let has = |f: &str| flags.iter().any(|x| x == f);
    (!has("!ipv4"), has("ipv6"))
}

fn parse_ip<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("openvpn passed {k}={v:?}, which is not an address"))
}

/// Reads the `up` script environment openvpn sets (with --ifconfig-noexec
/// --route-noexec). `pushed` is the last PUSH_REPLY, `cfg` the file's own
/// options.
pub fn setup_from_env(
    env: &BTreeMap<String, String>,
    pushed: Option<&[String]>,
    cfg: &OvpnConfig,
) -> Result<TunnelSetup, String> {
    let device = get(env, "dev")
        .ok_or("openvpn passed no `dev`")?
        .to_string();
    let mut s = TunnelSetup {
        device,
        mtu: get(env, "tun_mtu").and_then(|m| m.parse().ok()),
        ..Default::default()
    };
    if let Some(local) = get(env, "ifconfig_local") {
        let local: Ipv4Addr = parse_ip("ifconfig_local", local)?;
        if let Some(remote) = get(env, "ifconfig_remote") {
            let remote: Ipv4Addr = parse_ip("ifconfig_remote", remote)?;
            s.addresses.push(TunAddr {
                local: IpNet::new(local.into(), 32)?,
                peer: Some(remote.into()),
            });
        } else {
            let mask: Ipv4Addr = parse_ip(
                "ifconfig_netmask",
                get(env, "ifconfig_netmask").unwrap_or("255.255.255.255"),
            )?;
            let prefix = netmask_prefix(mask).ok_or_else(|| {
                format!("openvpn passed the netmask {mask}, which is not contiguous")
            })?;
            s.addresses.push(TunAddr {
                local: IpNet::new(local.into(), prefix)?,
                peer: None,
            });
        }
    }
    if let Some(local6) = get(env, "ifconfig_ipv6_local") {
        let addr: IpAddr = parse_ip("ifconfig_ipv6_local", local6)?;
        let bits = get(env, "ifconfig_ipv6_netbits")
            .and_then(|b| b.parse().ok())
            .unwrap_or(128);
        s.addresses.push(TunAddr {
            local: IpNet::new(addr, bits)?,
            peer: None,
        });
    }
    if s.addresses.is_empty() {
        return Err(
            "openvpn passed no tunnel address (ifconfig_local / ifconfig_ipv6_local)".into(),
        );
    }
    for n in 1.. {
        let Some(net) = get(env, &format!("route_network_{n}")) else {
            break;
        };
        let net: Ipv4Addr = parse_ip(&format!("route_network_{n}"), net)?;
        let mask: Ipv4Addr = parse_ip(
            &format!("route_netmask_{n}"),
            get(env, &format!("route_netmask_{n}")).unwrap_or("255.255.255.255"),
        )?;
        let prefix = netmask_prefix(mask).ok_or_else(|| {
            format!("openvpn passed the route netmask {mask}, which is not contiguous")
        })?;
        s.routes.push(IpNet::new(net.into(), prefix)?);
    }
    for n in 1.. {
        let Some(net) = get(env, &format!("route_ipv6_network_{n}")) else {
            break;
        };
        s.routes.push(
            net.parse()
                .map_err(|e| format!("openvpn passed route_ipv6_network_{n}={net:?}: {e}"))?,
        );
    }
    let redirect = match (&cfg.redirect_gateway, pushed) {
        (Some(flags), _) => Some(flags.clone()),
        (None, Some(p)) if !cfg.route_nopull => p
            .iter()
            .find_map(|o| o.strip_prefix("redirect-gateway"))
            .map(|rest| rest.split_whitespace().map(String::from).collect()),
        _ => None,
    };
    if let Some(flags) = redirect {
        let (v4, v6) = redirect_families(&flags);
        if v4 {
            s.routes.push("0.0.0.0/0".parse().expect("valid"));
        }
        if v6 {
            s.routes.push("::/0".parse().expect("valid"));
        }
    }
    for n in 1.. {
        let Some(opt) = get(env, &format!("foreign_option_{n}")) else {
            break;
        };
        let w: Vec<&str> = opt.split_whitespace().collect();
        match w.as_slice() {
            ["dhcp-option", "DNS" | "DNS6", addr] => {
                if let Ok(a) = addr.parse() {
                    s.dns_servers.push(a);
                }
            }
            [
                "dhcp-option",
                "DOMAIN" | "DOMAIN-SEARCH" | "ADAPTER_DOMAIN_SUFFIX",
                d,
            ] => {
                s.dns_search.push(d.trim_end_matches('.').to_string());
            }
            _ => {}
        }
    }
    // OpenVPN 2.6's `dns` option: dns_server_<n>_address_<m>, dns_search_domain_<n>.
    for (k, v) in env {
        if k.starts_with("dns_server_") && k.contains("_address_") {
            let addr = v.split_whitespace().next().unwrap_or("");
            if let Ok(a) = addr.parse::<IpAddr>()
                && !s.dns_servers.contains(&a)
            {
                s.dns_servers.push(a);
            }
        } else if k.starts_with("dns_search_domain_") {
            let d = v.trim_end_matches('.').to_string();
            if !s.dns_search.contains(&d) {
                s.dns_search.push(d);
            }
        }
    }
    Ok(s)
}

/// The reason, in plain words, that an openvpn connection failed, read from
/// its log.
pub fn failure_reason(log: &str) -> Option<String> {
    log_reason(log, REASONS, strip_timestamp)
}

/// What openvpn's log lines mean, the likeliest cause first.
const REASONS: &[LogReason] = &[
    (
        &["AUTH_FAILED"],
        "authentication failed: the server rejected the user name or password (check the profile's auth_file)",
    ),
    (
        &[
            "VERIFY ERROR",
            "certificate verify failed",
            "VERIFY X509NAME ERROR",
            "VERIFY KU ERROR",
            "VERIFY EKU ERROR",
        ],
        "certificate rejected: the server's certificate does not match the CA or name in the .ovpn file",
    ),
    (
        &["Options error:", "Error opening configuration file"],
        "openvpn refused its configuration",
    ),
    (
        &["Cannot resolve host", "RESOLVE:"],
        "server unreachable: its name does not resolve",
    ),
    (
        &["ECONNREFUSED", "Connection refused"],
        "server unreachable: the connection was refused (no OpenVPN server on that address and port?)",
    ),
    (
        &[
            "Network unreachable",
            "No route to host",
            "ENETUNREACH",
            "EHOSTUNREACH",
        ],
        "server unreachable: this machine has no route to it",
    ),
    (
        &["TLS key negotiation failed", "TLS handshake failed"],
        "server unreachable: no TLS handshake with the server (wrong address or port, or a firewall?)",
    ),
    (
        &[
            "Exiting due to fatal error",
            "private key password verification failed",
            "could not read",
        ],
        "openvpn gave up",
    ),
];

/// openvpn's log lines start with a date and time.
fn strip_timestamp(l: &str) -> String {
    let b = l.as_bytes();
    if b.len() > 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' {
        l[20..].to_string()
    } else {
        l.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch<'a>(cfg: &'a OvpnConfig, hook: &'a Path) -> Command<'a> {
        Command {
            config: Path::new("/etc/nsvpn/corp.ovpn"),
            cfg,
            tunnel: "nsvt-corp",
            profile: "corp",
            hook_exe: hook,
            auth_file: Some(Path::new("/etc/nsvpn/secrets/corp.auth")),
            management: Path::new("/run/nsvpn/corp/private/openvpn.sock"),
            wait: Duration::from_secs(20),
        }
    }

    fn checked(text: &str) -> OvpnConfig {
        config::check(text, &mut config::no_includes)
            .unwrap()
            .config
    }

    #[test]
    fn the_command_line() {
        let c = checked("client\nremote a 1194 tcp\nverb 1\n");
        let args = client_args(&launch(&c, Path::new("/usr/local/bin/nsvpn"))).unwrap();
        insta::assert_debug_snapshot!(args);
        let udp = checked("client\nremote a 1194\n");
        let args = client_args(&launch(&udp, Path::new("/n"))).unwrap();
        assert!(args.iter().any(|a| a == "--explicit-exit-notify"));
        assert!(!args.iter().any(|a| a == "--server-poll-timeout"));
        assert!(client_args(&launch(&c, Path::new("/we\"ird"))).is_err());
    }

    #[test]
    fn several_servers_each_get_a_share_of_the_wait() {
        let two = checked("client\nremote a 1194\nremote b 1194\n");
        let args = client_args(&launch(&two, Path::new("/n"))).unwrap();
        let i = args
            .iter()
            .position(|a| a == "--server-poll-timeout")
            .unwrap();
        assert_eq!(args[i + 1], "10");
        assert_eq!(
            wait_for(&two, Duration::from_secs(20)),
            Duration::from_secs(22)
        );
        let five = checked("client\nremote a\nremote b\nremote c\nremote d\nremote e\n");
        assert_eq!(server_poll_timeout(&five, Duration::from_secs(20)), Some(5));
        assert_eq!(
            wait_for(&five, Duration::from_secs(20)),
            Duration::from_secs(27)
        );
        // The file's own setting wins.
        let own = checked("client\nremote a\nremote b\nserver-poll-timeout 30\n");
        assert_eq!(server_poll_timeout(&own, Duration::from_secs(20)), None);
        assert_eq!(
            wait_for(&own, Duration::from_secs(20)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn the_servers_tried_come_from_the_log() {
        let log = "2026-11-25 10:00:00 UDPv4 link remote: [AF_INET]203.0.113.10:1195\n\
                   2026-11-25 10:00:05 read UDPv4 [ECONNREFUSED]: Connection refused (fd=3,code=111)\n\
                   2026-11-25 10:00:10 UDPv4 link remote: [AF_INET]203.0.113.10:1194\n\
                   2026-11-25 10:00:11 Attempting to establish TCP connection with [AF_INET]198.51.100.1:443\n\
                   2026-11-25 10:00:12 UDPv4 link remote: [AF_INET]203.0.113.10:1195\n";
        assert_eq!(
            remotes_tried(log),
            ["203.0.113.10:1195", "203.0.113.10:1194", "198.51.100.1:443"]
        );
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn subnet_topology_with_pushed_routes_and_dns() {
        // As seen from openvpn 2.6 against the lab's server.
        let e = env(&[
            ("dev", "nsvt-corp"),
            ("tun_mtu", "1500"),
            ("ifconfig_local", "10.8.0.2"),
            ("ifconfig_netmask", "255.255.255.0"),
            ("route_network_1", "10.20.0.0"),
            ("route_netmask_1", "255.255.0.0"),
            ("route_gateway_1", "10.8.0.1"),
            ("route_vpn_gateway", "10.8.0.1"),
            ("foreign_option_1", "dhcp-option DNS 10.20.0.53"),
            ("foreign_option_2", "dhcp-option DOMAIN corp.internal"),
            ("script_type", "up"),
        ]);
        insta::assert_debug_snapshot!(setup_from_env(&e, None, &OvpnConfig::default()).unwrap());
    }

    #[test]
    fn p2p_topology_redirect_gateway_and_ipv6() {
        let e = env(&[
            ("dev", "nsvt-corp"),
            ("ifconfig_local", "10.8.0.6"),
            ("ifconfig_remote", "10.8.0.5"),
            ("ifconfig_ipv6_local", "fd08::1000"),
            ("ifconfig_ipv6_netbits", "64"),
            ("route_ipv6_network_1", "fd20::/48"),
            ("foreign_option_1", "dhcp-option DNS6 fd20::53"),
            (
                "foreign_option_2",
                "dhcp-option DOMAIN-SEARCH eng.corp.example.",
            ),
            ("dns_server_0_address_0", "10.20.0.54"),
        ]);
        let log = "2026-11-24 18:38:24 PUSH: Received control message: 'PUSH_REPLY,redirect-gateway def1 ipv6,dhcp-option DNS 10.20.0.53,route-gateway 10.8.0.1,topology net30,ifconfig 10.8.0.6 10.8.0.5'\n";
        let pushed = last_push_reply(log).unwrap();
        let s = setup_from_env(&e, Some(&pushed), &OvpnConfig::default()).unwrap();
        insta::assert_debug_snapshot!(s);
        // route-nopull ignores what is pushed.
        let nopull = OvpnConfig {
            route_nopull: true,
            ..Default::default()
        };
        let s = setup_from_env(&e, Some(&pushed), &nopull).unwrap();
        assert!(!s.routes.iter().any(|r| r.prefix() == 0));
    }

    #[test]
    fn bad_environments_are_errors() {
        assert!(setup_from_env(&env(&[]), None, &OvpnConfig::default()).is_err());
        assert!(setup_from_env(&env(&[("dev", "t")]), None, &OvpnConfig::default()).is_err());
        let e = env(&[
            ("dev", "t"),
            ("ifconfig_local", "10.8.0.2"),
            ("ifconfig_netmask", "255.0.255.0"),
        ]);
        assert!(setup_from_env(&e, None, &OvpnConfig::default()).is_err());
        let e = env(&[("dev", "t"), ("ifconfig_local", "nope")]);
        assert!(setup_from_env(&e, None, &OvpnConfig::default()).is_err());
    }

    #[test]
    fn failure_reasons() {
        let cases = [
            "2026-11-24 18:38:24 AUTH: Received control message: AUTH_FAILED\n2026-11-24 18:38:24 SIGTERM[soft,auth-failure] received, process exiting",
            "2026-11-24 18:38:24 VERIFY ERROR: depth=1, error=self-signed certificate in certificate chain: CN=other",
            "2026-11-24 18:38:37 read UDPv4 [ECONNREFUSED]: Connection refused (fd=3,code=111)",
            "2026-11-24 18:38:33 Network unreachable, restarting",
            "2026-11-24 18:39:33 TLS Error: TLS key negotiation failed to occur within 60 seconds (check your network connectivity)",
            "Options error: Unrecognized option or missing or extra parameter(s) in x.ovpn:3: bogus (2.6.14)",
        ];
        let out: Vec<String> = cases.iter().map(|c| failure_reason(c).unwrap()).collect();
        insta::assert_snapshot!(out.join("\n"));
        assert_eq!(
            failure_reason("2026-11-24 18:38:24 Initialization Sequence Completed"),
            None
        );
    }
}
