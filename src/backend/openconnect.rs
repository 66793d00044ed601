//! OpenConnect (AnyConnect, ocserv, GlobalProtect, Fortinet, Pulse...): the
//! command line nsvpn runs `openconnect` with, nsvpn's hook as its
//! vpnc-script; the script environment read into a [`TunnelSetup`]; and
//! openconnect's log read for the reason a connection failed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::backend::client::hook::{
    LogReason, TunnelRecord, env_get as get, last_log_line, log_reason,
};
use crate::backend::client::{Launch, last_error};
use crate::backend::vpn::{RawVpn, Vpn};
use crate::backend::{Reconnect, at, check_secret, find_client, hook_exe};
use crate::ipnet::{IpNet, netmask_prefix};
use crate::names::Names;
use crate::profile::{Profile, Source};
use crate::tunnel::{TunAddr, TunnelSetup};
use crate::util;

pub const PROGRAM: &str = "openconnect";
pub const DEFAULT_PROTOCOL: &str = "anyconnect";

/// Why the script was called (the `reason` variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    PreInit,
    Connect,
    Disconnect,
    Reconnect,
    AttemptReconnect,
}

impl Reason {
    pub fn parse(s: &str) -> Result<Reason, String> {
        Ok(match s {
            "pre-init" => Reason::PreInit,
            "connect" => Reason::Connect,
            "disconnect" => Reason::Disconnect,
            "reconnect" => Reason::Reconnect,
            "attempt-reconnect" => Reason::AttemptReconnect,
            other => {
                return Err(format!(
                    "openconnect called nsvpn's hook with reason={other:?}, which nsvpn does not know: refusing it"
                ));
            }
        })
    }
}

/// Options nsvpn sets itself, or that would take the tunnel out of its
/// hands. Long name, short letter, and what to do instead.
const REFUSED: &[(&str, Option<char>, &str)] = &[
    (
        "--script",
        Some('s'),
        "nsvpn's hook is the script; it sets routes and DNS inside the namespace",
    ),
    ("--script-tun", Some('S'), "nsvpn's hook is the script"),
    ("--interface", Some('i'), "nsvpn names the tunnel device"),
    (
        "--background",
        Some('b'),
        "nsvpn runs openconnect in the background itself",
    ),
    (
        "--setuid",
        Some('U'),
        "nsvpn's hook must run as root on every reconnect",
    ),
    (
        "--syslog",
        Some('l'),
        "nsvpn keeps openconnect's log in /run/nsvpn/<profile>/openconnect.log",
    ),
    (
        "--config",
        None,
        "a config file is not checked; put its options in `args`",
    ),
    ("--user", Some('u'), "set `user` in the profile"),
    ("--protocol", None, "set `protocol` in the profile"),
    (
        "--passwd-on-stdin",
        None,
        "set `password_file` in the profile",
    ),
    ("--cookieonly", None, "nsvpn needs a tunnel, not a cookie"),
    ("--printcookie", None, "nsvpn needs a tunnel, not a cookie"),
    ("--authenticate", None, "nsvpn needs a tunnel, not a cookie"),
];

/// Checks the profile's extra `args`. Errors name the argument.
pub fn check_args(args: &[String]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let hit = REFUSED.iter().find(|(long, short, _)| {
            a == long
                || a.starts_with(&format!("{long}="))
                || short.is_some_and(|c| !a.starts_with("--") && a.starts_with(&format!("-{c}")))
        });
        if let Some((long, _, why)) = hit {
            errors.push(format!("args[{i}] = {a:?}: `{long}` is not allowed: {why}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The hook as openconnect runs it: through `/bin/sh -c`, so the path is
/// single-quoted.
fn script(hook_exe: &Path, profile: &str) -> Result<String, String> {
    let exe = hook_exe.to_string_lossy();
    if exe.contains('\'') {
        return Err(format!(
            "nsvpn's own path {} contains a quote; openconnect could not run it as its script",
            hook_exe.display()
        ));
    }
    Ok(format!("'{exe}' hook openconnect {profile}"))
}

/// The command line nsvpn runs.
pub struct Settings<'a> {
    pub server: &'a str,
    pub protocol: Option<&'a str>,
    pub user: Option<&'a str>,
    pub with_password: bool,
    pub args: &'a [String],
}

pub fn client_args(
    s: &Settings<'_>,
    tunnel: &str,
    profile: &str,
    hook_exe: &Path,
) -> Result<Vec<OsString>, String> {
    let mut a: Vec<OsString> = vec![
        format!("--protocol={}", s.protocol.unwrap_or(DEFAULT_PROTOCOL)).into(),
        "--non-inter".into(),
        "--interface".into(),
        tunnel.into(),
        "--script".into(),
        script(hook_exe, profile)?.into(),
    ];
    if let Some(u) = s.user {
        a.push(format!("--user={u}").into());
    }
    if s.with_password {
        a.push("--passwd-on-stdin".into());
    }
    a.extend(s.args.iter().map(OsString::from));
    a.push(s.server.into());
    Ok(a)
}

/// Reads and checks what openconnect needs: its arguments, the password
/// (from `password_file`, or asked on the terminal).
/// The `[vpn]` fields this kind takes.
pub const FIELDS: &[&str] = &["server", "protocol", "user", "password_file", "args"];

/// `[vpn]` with kind = "openconnect": the server, and what openconnect is
/// given besides.
pub(crate) fn settings(src: &Source, v: RawVpn) -> Result<Vpn> {
    let server = v
        .server
        .ok_or_else(|| src.field("vpn.server", "is missing: name the VPN gateway".into()))?;
    if server.is_empty() || server.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(src.field(
            "vpn.server",
            format!("{server:?} is not a host name or URL"),
        ));
    }
    Ok(Vpn::OpenConnect {
        server,
        protocol: v.protocol,
        user: v.user,
        password_file: v
            .password_file
            .map(|p| src.file("vpn.password_file", &p))
            .transpose()?,
        args: v.args.unwrap_or_default(),
    })
}

pub fn prepare(
    profile: &Profile,
    settings: &Settings,
    password_file: Option<&Path>,
    wait: Duration,
) -> Result<Launch> {
    let Settings {
        server, user, args, ..
    } = *settings;
    check_args(args)
        .map_err(|errs| anyhow!("{}:\n  {}", at(profile, "vpn.args"), errs.join("\n  ")))?;
    let password = match password_file {
        Some(f) => {
            check_secret(profile, "vpn.password_file", f)?;
            let text = std::fs::read_to_string(f).with_context(|| {
                format!("{} ({})", at(profile, "vpn.password_file"), f.display())
            })?;
            let pw = text.lines().next().unwrap_or("").to_string();
            if pw.is_empty() {
                bail!(
                    "{} ({}): the file is empty",
                    at(profile, "vpn.password_file"),
                    f.display()
                );
            }
            Some(pw)
        }
        None if user.is_some() && util::stdin_is_terminal() => Some(util::read_password(
            &format!("Password for {} at {server}: ", user.unwrap_or("")),
        )?),
        None => None,
    };
    let path = find_client(PROGRAM)?;
    let names = Names::for_profile(&profile.name);
    let settings = Settings {
        with_password: password.is_some(),
        ..*settings
    };
    let args = client_args(&settings, &names.tunnel, &profile.name, &hook_exe()?)
        .map_err(|e| anyhow!(e))?;
    Ok(Launch {
        program: PROGRAM,
        path,
        args,
        stdin: password.map(|p| format!("{p}\n").into_bytes()),
        fd3: None,
        wait,
        label: "OpenConnect",
        failure_reason,
        openvpn: None,
    })
}

/// What openconnect's script environment says, by `reason`: a tunnel to
/// apply at `connect` and `reconnect`; `attempt-reconnect` and `disconnect`
/// are only recorded for `status`; `pre-init` needs nothing.
pub fn hook_event(
    profile: &str,
    env: &BTreeMap<String, String>,
) -> Result<Option<(TunnelSetup, &'static str)>> {
    let reason = env.get("reason").map(String::as_str).unwrap_or("");
    let event = match Reason::parse(reason).map_err(|e| anyhow!(e))? {
        Reason::PreInit => return Ok(None),
        Reason::AttemptReconnect => {
            TunnelRecord::mark(profile, "attempt-reconnect", false)?;
            return Ok(None);
        }
        Reason::Disconnect => {
            TunnelRecord::mark(profile, "disconnect", false)?;
            return Ok(None);
        }
        Reason::Connect => "connect",
        Reason::Reconnect => "reconnect",
    };
    Ok(Some((setup_from_env(env).map_err(|e| anyhow!(e))?, event)))
}

/// Whether openconnect is reconnecting: its hook recorded
/// `attempt-reconnect` and no connect since.
pub fn reconnecting(profile: &str) -> Option<Reconnect> {
    let rec = TunnelRecord::load(profile)?;
    (!rec.connected && rec.event == "attempt-reconnect").then(|| Reconnect {
        since: rec.at,
        last_error: last_error(profile, PROGRAM, failure_reason),
    })
}

fn split_routes(env: &BTreeMap<String, String>, prefix: &str) -> Result<Vec<IpNet>, String> {
    let count: usize = get(env, prefix).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..count {
        let addr_key = format!("{prefix}_{i}_ADDR");
        let addr: IpAddr = get(env, &addr_key)
            .ok_or_else(|| format!("openconnect passed {prefix}={count} but no {addr_key}"))?
            .parse()
            .map_err(|_| format!("openconnect passed {addr_key}, which is not an address"))?;
        let len = match get(env, &format!("{prefix}_{i}_MASKLEN")) {
            Some(l) => l
                .parse()
                .map_err(|_| format!("openconnect passed {prefix}_{i}_MASKLEN={l:?}"))?,
            None => {
                let mask: Ipv4Addr = get(env, &format!("{prefix}_{i}_MASK"))
                    .and_then(|m| m.parse().ok())
                    .ok_or_else(|| format!("openconnect passed no mask for {addr_key}"))?;
                netmask_prefix(mask)
                    .ok_or_else(|| format!("{prefix}_{i}_MASK is not contiguous"))?
            }
        };
        out.push(IpNet::new(addr, len)?);
    }
    Ok(out)
}

/// Reads the vpnc-script environment of a `connect` or `reconnect`.
pub fn setup_from_env(env: &BTreeMap<String, String>) -> Result<TunnelSetup, String> {
    let device = get(env, "TUNDEV")
        .ok_or("openconnect passed no TUNDEV")?
        .to_string();
    let mut s = TunnelSetup {
        device,
        mtu: get(env, "INTERNAL_IP4_MTU").and_then(|m| m.parse().ok()),
        ..Default::default()
    };
    if let Some(a) = get(env, "INTERNAL_IP4_ADDRESS") {
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("openconnect passed INTERNAL_IP4_ADDRESS={a:?}"))?;
        let len = match get(env, "INTERNAL_IP4_NETMASKLEN") {
            Some(l) => l
                .parse()
                .map_err(|_| format!("INTERNAL_IP4_NETMASKLEN={l:?}"))?,
            None => get(env, "INTERNAL_IP4_NETMASK")
                .and_then(|m| m.parse().ok())
                .and_then(netmask_prefix)
                .unwrap_or(32),
        };
        s.addresses.push(TunAddr {
            local: IpNet::new(addr.into(), len)?,
            peer: None,
        });
    }
    let v6 = match (
        get(env, "INTERNAL_IP6_NETMASK"),
        get(env, "INTERNAL_IP6_ADDRESS"),
    ) {
        (Some(n), _) if n.contains('/') => Some(
            n.parse::<IpNet>()
                .map_err(|e| format!("openconnect passed INTERNAL_IP6_NETMASK={n:?}: {e}"))?,
        ),
        (_, Some(a)) => Some(IpNet::new(
            a.parse()
                .map_err(|_| format!("openconnect passed INTERNAL_IP6_ADDRESS={a:?}"))?,
            128,
        )?),
        _ => None,
    };
    if let Some(net) = v6 {
        s.addresses.push(TunAddr {
            local: net,
            peer: None,
        });
    }
    if s.addresses.is_empty() {
        return Err("openconnect passed no tunnel address (INTERNAL_IP4_ADDRESS)".into());
    }
    let v4_routes = split_routes(env, "CISCO_SPLIT_INC")?;
    let v6_routes = split_routes(env, "CISCO_IPV6_SPLIT_INC")?;
    if v4_routes.is_empty() && v6_routes.is_empty() {
        // No split-include list: everything goes through the VPN.
        s.routes.push("0.0.0.0/0".parse().expect("valid"));
        if v6.is_some() {
            s.routes.push("::/0".parse().expect("valid"));
        }
    }
    s.routes.extend(v4_routes);
    s.routes.extend(v6_routes);
    for key in ["INTERNAL_IP4_DNS", "INTERNAL_IP6_DNS"] {
        for d in get(env, key).unwrap_or("").split_whitespace() {
            let a: IpAddr = d
                .parse()
                .map_err(|_| format!("openconnect passed {key} with {d:?}, not an address"))?;
            if !s.dns_servers.contains(&a) {
                s.dns_servers.push(a);
            }
        }
    }
    if let Some(d) = get(env, "CISCO_DEF_DOMAIN") {
        s.dns_search.extend(
            d.split([',', ' '])
                .filter(|x| !x.is_empty())
                .map(String::from),
        );
    }
    Ok(s)
}

/// The reason, in plain words, that openconnect failed, read from its log.
pub fn failure_reason(log: &str) -> Option<String> {
    let clean = |l: &str| l.trim().to_string();
    let find = |pats: &[&str]| last_log_line(log, pats).map(clean);
    // A rejected certificate (unless the login failed first): its reason
    // and pin are on lines of their own.
    if find(&["failed verification", "Error in the certificate"]).is_some()
        && find(REASONS[0].0).is_none()
    {
        let why = find(&["Reason:"]).unwrap_or_default();
        let pin = find(&["--servercert pin-sha256:"])
            .map(|p| {
                format!(
                    "; if you trust it, add to args: \"--servercert\", \"{}\"",
                    p.trim_start_matches("--servercert ")
                )
            })
            .unwrap_or_default();
        return Some(format!(
            "certificate rejected: the server's certificate failed verification [{why}]{pin}"
        ));
    }
    log_reason(log, REASONS, clean)
}

/// What openconnect's log lines mean, the likeliest cause first (a failed
/// login first of all).
const REASONS: &[LogReason] = &[
    (
        &[
            "Login failed",
            "Authentication failed",
            "authentication failed",
        ],
        "authentication failed: the server rejected the user name or password (check the profile's user and password_file)",
    ),
    (
        &["Failed to resolve host", "getaddrinfo failed"],
        "server unreachable: its name does not resolve",
    ),
    (
        &[
            "Failed to connect to host",
            "Connection refused",
            "No route to host",
            "Network is unreachable",
        ],
        "server unreachable: no connection to the server",
    ),
    (
        &["User input required in non-interactive mode"],
        "the server asked for input nsvpn cannot give (a password? set user and password_file, or run `nsvpn up` in a terminal)",
    ),
    (&["Script '", "returned error"], "nsvpn's hook failed"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reasons() {
        for r in [
            "pre-init",
            "connect",
            "disconnect",
            "reconnect",
            "attempt-reconnect",
        ] {
            assert!(Reason::parse(r).is_ok());
        }
        insta::assert_snapshot!(Reason::parse("frobnicate").unwrap_err());
    }

    #[test]
    fn connect_with_split_includes() {
        // As seen from openconnect 9.01 against the lab's ocserv.
        let e = env(&[
            ("reason", "connect"),
            ("TUNDEV", "nsvt-cust"),
            ("INTERNAL_IP4_ADDRESS", "10.9.0.50"),
            ("INTERNAL_IP4_MTU", "1434"),
            ("INTERNAL_IP4_NETMASK", "255.255.255.0"),
            ("INTERNAL_IP4_NETMASKLEN", "24"),
            ("INTERNAL_IP4_NETADDR", "10.9.0.0"),
            ("INTERNAL_IP4_DNS", "10.20.0.53 10.20.0.54"),
            ("CISCO_DEF_DOMAIN", "corp.internal"),
            ("CISCO_SPLIT_INC", "2"),
            ("CISCO_SPLIT_INC_0_ADDR", "10.20.0.0"),
            ("CISCO_SPLIT_INC_0_MASK", "255.255.0.0"),
            ("CISCO_SPLIT_INC_0_MASKLEN", "16"),
            ("CISCO_SPLIT_INC_1_ADDR", "172.16.0.0"),
            ("CISCO_SPLIT_INC_1_MASK", "255.240.0.0"),
            ("VPNGATEWAY", "203.0.113.10"),
        ]);
        insta::assert_debug_snapshot!(setup_from_env(&e).unwrap());
    }

    #[test]
    fn no_split_includes_means_everything_with_ipv6() {
        let e = env(&[
            ("TUNDEV", "nsvt-cust"),
            ("INTERNAL_IP4_ADDRESS", "10.9.0.50"),
            ("INTERNAL_IP6_NETMASK", "fd09::32/64"),
            ("INTERNAL_IP6_DNS", "fd20::53"),
            ("CISCO_DEF_DOMAIN", "a.example,b.example"),
        ]);
        insta::assert_debug_snapshot!(setup_from_env(&e).unwrap());
    }

    #[test]
    fn bad_environments_are_errors() {
        assert!(setup_from_env(&env(&[])).is_err());
        assert!(setup_from_env(&env(&[("TUNDEV", "t")])).is_err());
        let e = env(&[
            ("TUNDEV", "t"),
            ("INTERNAL_IP4_ADDRESS", "10.9.0.5"),
            ("CISCO_SPLIT_INC", "1"),
        ]);
        assert!(setup_from_env(&e).is_err());
        let e = env(&[
            ("TUNDEV", "t"),
            ("INTERNAL_IP4_ADDRESS", "10.9.0.5"),
            ("INTERNAL_IP4_DNS", "x"),
        ]);
        assert!(setup_from_env(&e).is_err());
    }

    #[test]
    fn refused_args() {
        let args: Vec<String> = [
            "--servercert",
            "pin-sha256:abc",
            "-s",
            "/etc/vpnc/vpnc-script",
            "--script=/x",
            "-b",
            "--interface=tun9",
            "--no-dtls",
            "-Unobody",
            "--user=bob",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        insta::assert_snapshot!(check_args(&args).unwrap_err().join("\n"));
        assert!(
            check_args(&[
                "--servercert".into(),
                "pin-sha256:x".into(),
                "--no-dtls".into()
            ])
            .is_ok()
        );
    }

    #[test]
    fn the_command_line() {
        let args = vec!["--servercert".to_string(), "pin-sha256:abc=".to_string()];
        let s = Settings {
            server: "https://vpn.cust.example",
            protocol: None,
            user: Some("alice"),
            with_password: true,
            args: &args,
        };
        insta::assert_debug_snapshot!(
            client_args(&s, "nsvt-cust", "cust", Path::new("/usr/bin/nsvpn")).unwrap()
        );
        assert!(client_args(&s, "t", "c", Path::new("/it's/nsvpn")).is_err());
    }

    #[test]
    fn failure_reasons() {
        let cases = [
            "POST https://203.0.113.2/auth\nLogin failed.\nPlease enter your password.\nPassword:\nUser input required in non-interactive mode\nFailed to complete authentication",
            "Server certificate verify failed: signer not found\n\nCertificate from VPN server \"203.0.113.2\" failed verification.\nReason: signer not found\nTo trust this server in future, perhaps add this to your command line:\n    --servercert pin-sha256:m2fnt+WHMCW=\nSSL connection failure: Error in the certificate.",
            "Failed to connect to host 203.0.113.9\nFailed to open HTTPS connection to 203.0.113.9\nFailed to complete authentication",
            "Please enter your username.\nUser input required in non-interactive mode\nFailed to complete authentication",
        ];
        let out: Vec<String> = cases.iter().map(|c| failure_reason(c).unwrap()).collect();
        insta::assert_snapshot!(out.join("\n"));
        assert_eq!(failure_reason("Connected as 10.9.0.50, using SSL"), None);
    }
}
