//! OpenVPN: the user's `.ovpn` file, checked so that nothing in it can act
//! on the host; the command line nsvpn runs `openvpn` with (nsvpn's hook as
//! the only script); the hook's environment read into a [`TunnelSetup`];
//! and openvpn's log read for the reason a connection failed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use crate::ipnet::{IpNet, netmask_prefix};
use crate::tunnel::{TunAddr, TunnelSetup, env_get as get, last_log_line};

pub const PROGRAM: &str = "openvpn";

/// Options that run programs or load code on the host, or that would take
/// openvpn out of nsvpn's hands. Each comes with what to do instead.
const REFUSED: &[(&str, &str)] = &[
    (
        "up",
        "nsvpn's hook is the only script; it sets routes and DNS inside the namespace",
    ),
    (
        "down",
        "nsvpn's hook is the only script; `nsvpn down` cleans up",
    ),
    ("route-up", "nsvpn's hook is the only script"),
    ("route-pre-down", "nsvpn's hook is the only script"),
    ("ipchange", "nsvpn's hook is the only script"),
    (
        "tls-verify",
        "scripts would run on the host; use verify-x509-name instead",
    ),
    (
        "client-connect",
        "a server option: scripts would run on the host",
    ),
    (
        "client-disconnect",
        "a server option: scripts would run on the host",
    ),
    (
        "learn-address",
        "a server option: scripts would run on the host",
    ),
    (
        "auth-user-pass-verify",
        "a server option: scripts would run on the host",
    ),
    (
        "tls-crypt-v2-verify",
        "a server option: scripts would run on the host",
    ),
    (
        "plugin",
        "plugins run inside openvpn on the host (and may rewrite DNS or routes there)",
    ),
    (
        "script-security",
        "nsvpn sets it so that only its own hook runs",
    ),
    (
        "iproute",
        "nsvpn configures the tunnel itself, over netlink",
    ),
    (
        "config",
        "an included file is not checked; put its options in this file",
    ),
    (
        "daemon",
        "nsvpn runs openvpn in the background itself and keeps its log",
    ),
    (
        "log",
        "nsvpn keeps openvpn's log in /run/nsvpn/<profile>/openvpn.log",
    ),
    (
        "log-append",
        "nsvpn keeps openvpn's log in /run/nsvpn/<profile>/openvpn.log",
    ),
    (
        "syslog",
        "nsvpn keeps openvpn's log in /run/nsvpn/<profile>/openvpn.log",
    ),
    (
        "chroot",
        "nsvpn's hook must be reachable on every reconnect",
    ),
    ("mktun", "a standalone mode, not a connection"),
    ("rmtun", "a standalone mode, not a connection"),
];

/// What nsvpn needs to know of a checked `.ovpn` file.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct OvpnConfig {
    /// `auth-user-pass` without a file: openvpn would prompt.
    pub prompts_for_password: bool,
    /// Every transport is UDP (so an exit notification can be sent).
    pub udp_only: bool,
    pub explicit_exit_notify: bool,
    pub verb: Option<u32>,
    /// `redirect-gateway` in the file itself (not pushed).
    pub redirect_gateway: Option<Vec<String>>,
    pub route_nopull: bool,
    pub persist_tun: bool,
    pub drops_privileges: bool,
}

/// Splits one config line into words, with openvpn's quoting ("..." and
/// '...', backslash escapes inside double quotes and outside quotes).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' | ';' if !in_word => break,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Checks a `.ovpn` file. Errors name the line and say what to do.
pub fn check(text: &str) -> Result<OvpnConfig, Vec<String>> {
    let mut cfg = OvpnConfig {
        udp_only: true,
        ..Default::default()
    };
    let mut errors = Vec::new();
    let mut block: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if let Some(b) = block.clone() {
            if line == format!("</{b}>") {
                block = None;
                continue;
            }
            if b != "connection" {
                continue;
            }
        }
        if let Some(tag) = line.strip_prefix('<').and_then(|l| l.strip_suffix('>')) {
            if !tag.starts_with('/') {
                block = Some(tag.to_string());
            }
            continue;
        }
        let w = words(line);
        let Some(first) = w.first() else { continue };
        let opt = first.trim_start_matches("--");
        let args = &w[1..];
        if let Some((_, why)) = REFUSED.iter().find(|(o, _)| *o == opt) {
            errors.push(format!(
                "line {n}: `{opt}` is not allowed: {why}; remove the line"
            ));
            continue;
        }
        match opt {
            "dev" if args.first().is_some_and(|d| d.starts_with("tap")) => errors.push(format!(
                "line {n}: `dev {}`: nsvpn runs routed (tun) OpenVPN tunnels, not tap bridges",
                args[0]
            )),
            "dev-type" if args.first().is_some_and(|d| d != "tun") => errors.push(format!(
                "line {n}: `dev-type {}`: nsvpn runs routed (tun) OpenVPN tunnels only",
                args[0]
            )),
            "auth-user-pass" => cfg.prompts_for_password = args.is_empty(),
            "proto" if args.first().is_some_and(|p| !p.starts_with("udp")) => cfg.udp_only = false,
            "remote" if args.get(2).is_some_and(|p| !p.starts_with("udp")) => cfg.udp_only = false,
            "explicit-exit-notify" => cfg.explicit_exit_notify = true,
            "verb" => cfg.verb = args.first().and_then(|v| v.parse().ok()),
            "redirect-gateway" | "redirect-private" => cfg.redirect_gateway = Some(args.to_vec()),
            "route-nopull" => cfg.route_nopull = true,
            "persist-tun" => cfg.persist_tun = true,
            "user" | "group" => cfg.drops_privileges = true,
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

/// Quotes a word for openvpn's own command-line parser (used for `--up`).
fn quote(s: &str) -> Option<String> {
    (!s.contains(['"', '\\', '\n'])).then(|| format!("\"{s}\""))
}

/// The command line nsvpn runs: the user's file unchanged, then nsvpn's
/// options, which come later and so win.
pub fn client_args(
    config: &Path,
    cfg: &OvpnConfig,
    tunnel: &str,
    profile: &str,
    hook_exe: &Path,
    auth_file: Option<&Path>,
) -> Result<Vec<OsString>, String> {
    let exe = quote(&hook_exe.to_string_lossy()).ok_or_else(|| {
        format!(
            "nsvpn's own path {} contains a quote or backslash; openvpn could not run it as its hook",
            hook_exe.display()
        )
    })?;
    let dir = config.parent().unwrap_or(Path::new("/"));
    let mut a: Vec<OsString> = vec![
        "--cd".into(),
        dir.into(),
        "--config".into(),
        config.into(),
        "--dev".into(),
        tunnel.into(),
        "--dev-type".into(),
        "tun".into(),
        "--disable-dco".into(),
        "--ifconfig-noexec".into(),
        "--route-noexec".into(),
        "--script-security".into(),
        "2".into(),
        "--up".into(),
        format!("{exe} hook openvpn {profile}").into(),
        "--up-restart".into(),
    ];
    if let Some(f) = auth_file {
        a.extend(["--auth-user-pass".into(), f.into()]);
    }
    // The hook reads the pushed options (redirect-gateway is not in the
    // script environment) from the log, where openvpn writes them at verb 3.
    if cfg.verb.is_none_or(|v| v < 3) {
        a.extend(["--verb".into(), "3".into()]);
    }
    if cfg.udp_only && !cfg.explicit_exit_notify {
        a.extend(["--explicit-exit-notify".into(), "1".into()]);
    }
    Ok(a)
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
    let find = |pats: &[&str]| last_log_line(log, pats).map(strip_timestamp);
    if let Some(l) = find(&["AUTH_FAILED"]) {
        return Some(format!(
            "authentication failed: the server rejected the user name or password (check the profile's auth_file) [{l}]"
        ));
    }
    if let Some(l) = find(&[
        "VERIFY ERROR",
        "certificate verify failed",
        "VERIFY X509NAME ERROR",
        "VERIFY KU ERROR",
        "VERIFY EKU ERROR",
    ]) {
        return Some(format!(
            "certificate rejected: the server's certificate does not match the CA or name in the .ovpn file [{l}]"
        ));
    }
    if let Some(l) = find(&["Options error:", "Error opening configuration file"]) {
        return Some(format!("openvpn refused its configuration [{l}]"));
    }
    if let Some(l) = find(&["Cannot resolve host", "RESOLVE:"]) {
        return Some(format!(
            "server unreachable: its name does not resolve [{l}]"
        ));
    }
    if let Some(l) = find(&["ECONNREFUSED", "Connection refused"]) {
        return Some(format!(
            "server unreachable: the connection was refused (no OpenVPN server on that address and port?) [{l}]"
        ));
    }
    if let Some(l) = find(&[
        "Network unreachable",
        "No route to host",
        "ENETUNREACH",
        "EHOSTUNREACH",
    ]) {
        return Some(format!(
            "server unreachable: this machine has no route to it [{l}]"
        ));
    }
    if let Some(l) = find(&["TLS key negotiation failed", "TLS handshake failed"]) {
        return Some(format!(
            "server unreachable: no TLS handshake with the server (wrong address or port, or a firewall?) [{l}]"
        ));
    }
    if let Some(l) = find(&[
        "Exiting due to fatal error",
        "private key password verification failed",
        "could not read",
    ]) {
        return Some(format!("openvpn gave up [{l}]"));
    }
    None
}

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

    const OVPN: &str = r#"# typical client file
client
dev tun
proto udp
remote vpn.corp.example 1194
nobind
persist-key
persist-tun
auth-user-pass
verb 3
<ca>
-----BEGIN CERTIFICATE-----
up /etc/openvpn/not-an-option-inside-a-block
-----END CERTIFICATE-----
</ca>
"#;

    #[test]
    fn words_follow_openvpns_quoting() {
        assert_eq!(words(r#"remote "a b" 1194 # c"#), ["remote", "a b", "1194"]);
        assert_eq!(words(r"up '/x y/z'"), ["up", "/x y/z"]);
        assert_eq!(words(r"setenv A b\ c"), ["setenv", "A", "b c"]);
        assert!(words("; comment").is_empty());
    }

    #[test]
    fn a_typical_file_passes() {
        let c = check(OVPN).unwrap();
        assert!(c.prompts_for_password && c.udp_only && c.persist_tun);
        assert_eq!(c.verb, Some(3));
    }

    #[test]
    fn scripts_plugins_and_tap_are_refused() {
        let bad = "client\nup /etc/openvpn/update-resolv-conf\n--down x\nplugin /usr/lib/x.so\n\
                   script-security 2\ndev tap0\n<connection>\nremote a 1\nroute-up b\n</connection>\nconfig other.conf\n";
        insta::assert_snapshot!(check(bad).unwrap_err().join("\n"));
    }

    #[test]
    fn the_command_line() {
        let c = check("client\nremote a 1194 tcp\nverb 1\n").unwrap();
        let args = client_args(
            Path::new("/etc/nsvpn/corp.ovpn"),
            &c,
            "nsvt-corp",
            "corp",
            Path::new("/usr/local/bin/nsvpn"),
            Some(Path::new("/etc/nsvpn/secrets/corp.auth")),
        )
        .unwrap();
        insta::assert_debug_snapshot!(args);
        let udp = client_args(
            Path::new("/x/a.ovpn"),
            &check("client\n").unwrap(),
            "t",
            "a",
            Path::new("/n"),
            None,
        )
        .unwrap();
        assert!(udp.iter().any(|a| a == "--explicit-exit-notify"));
        assert!(
            client_args(
                Path::new("/x/a.ovpn"),
                &c,
                "t",
                "a",
                Path::new("/we\"ird"),
                None
            )
            .is_err()
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
