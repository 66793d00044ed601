//! Property tests of every parser nsvpn feeds with outside input: profiles,
//! wg-quick files, `.ovpn` files, the OpenVPN and openconnect script
//! environments, wireguard-go's UAPI replies, addresses. Each gets both raw
//! random text and input built from the parser's own vocabulary (so the
//! cases reach deep into it), and must return a value or an error, never
//! panic; errors must say where the problem is.
//!
//! The number of cases per property comes from `PROPTEST_CASES` (256 when
//! unset); `integration/test.sh` runs a larger bounded batch.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use nsvpn::backend::wireguard::{userspace, wgquick};
use nsvpn::backend::{openconnect, openvpn};
use nsvpn::ipnet::IpNet;
use nsvpn::profile::Profile;
use proptest::prelude::*;

/// Values that are almost right: addresses, CIDRs, names, paths, numbers and
/// their broken neighbours.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("10.20.0.0/16".to_string()),
        Just("10.20.0.0/33".to_string()),
        Just("10.20.0.1".to_string()),
        Just("fd99::2/128".to_string()),
        Just("::/0".to_string()),
        Just("0.0.0.0/0".to_string()),
        Just("999.1.1.1".to_string()),
        Just("../../etc/shadow".to_string()),
        Just("/etc/nsvpn/secrets/x".to_string()),
        Just("a".repeat(300)),
        Just(String::new()),
        Just("-1".to_string()),
        Just("4294967296".to_string()),
        Just("gw.example:51820".to_string()),
        Just("[fd00::1]:51820".to_string()),
        Just("YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU=".to_string()),
        "[ -~]{0,40}",
        "[0-9./:a-f]{0,24}",
        any::<u32>().prop_map(|n| n.to_string()),
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        value().prop_map(|v| format!("{v:?}")),
        prop::collection::vec(value(), 0..4).prop_map(|v| format!("{v:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("true".to_string()),
        Just("{ x = 1 }".to_string()),
        "[ -~]{0,20}",
    ]
}

fn profile_text() -> impl Strategy<Value = String> {
    let section = prop_oneof![
        Just("vpn"),
        Just("routes"),
        Just("dns"),
        Just("hosts"),
        Just("access"),
        Just("veth"),
        Just("colour"),
    ];
    let key = prop_oneof![
        Just("kind".to_string()),
        Just("config".to_string()),
        Just("userspace".to_string()),
        Just("server".to_string()),
        Just("user".to_string()),
        Just("password_file".to_string()),
        Just("auth_file".to_string()),
        Just("include".to_string()),
        Just("exclude".to_string()),
        Just("default".to_string()),
        Just("servers".to_string()),
        Just("search".to_string()),
        Just("users".to_string()),
        Just("groups".to_string()),
        Just("subnet".to_string()),
        Just("description".to_string()),
        Just("\"db.internal\"".to_string()),
        "[a-z_]{1,12}",
    ];
    let kind = prop_oneof![
        Just("wireguard"),
        Just("openvpn"),
        Just("openconnect"),
        Just("ipsec")
    ];
    (
        kind,
        prop::collection::vec(
            (section, prop::collection::vec((key, toml_value()), 0..5)),
            0..5,
        ),
    )
        .prop_map(|(kind, sections)| {
            let mut s = format!("[vpn]\nkind = {kind:?}\nconfig = \"x.conf\"\n");
            for (name, kvs) in sections {
                s.push_str(&format!("[{name}]\n"));
                for (k, v) in kvs {
                    s.push_str(&format!("{k} = {v}\n"));
                }
            }
            s
        })
}

fn wg_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("PrivateKey"),
        Just("Address"),
        Just("DNS"),
        Just("MTU"),
        Just("ListenPort"),
        Just("PublicKey"),
        Just("PresharedKey"),
        Just("Endpoint"),
        Just("AllowedIPs"),
        Just("PersistentKeepalive"),
        Just("Table"),
        Just("PostUp"),
        Just("Bogus"),
    ];
    let line = prop_oneof![
        Just("[Interface]".to_string()),
        Just("[Peer]".to_string()),
        Just("[Other]".to_string()),
        (key, prop::collection::vec(value(), 1..3))
            .prop_map(|(k, v)| format!("{k} = {}", v.join(", "))),
        "[ -~]{0,30}",
    ];
    prop::collection::vec(line, 0..14).prop_map(|l| l.join("\n"))
}

fn env_of(keys: &'static [&'static str]) -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        prop::sample::select(keys).prop_map(str::to_string),
        "[A-Za-z_0-9]{1,24}",
    ];
    prop::collection::btree_map(key, value(), 0..16)
}

const OPENVPN_ENV: &[&str] = &[
    "dev",
    "script_type",
    "tun_mtu",
    "ifconfig_local",
    "ifconfig_netmask",
    "ifconfig_remote",
    "ifconfig_ipv6_local",
    "ifconfig_ipv6_netbits",
    "route_network_1",
    "route_netmask_1",
    "route_network_2",
    "route_netmask_2",
    "route_ipv6_network_1",
    "route_redirect_gateway_ipv4",
    "foreign_option_1",
    "foreign_option_2",
    "topology",
];

const OPENCONNECT_ENV: &[&str] = &[
    "reason",
    "TUNDEV",
    "INTERNAL_IP4_ADDRESS",
    "INTERNAL_IP4_MTU",
    "INTERNAL_IP4_NETMASK",
    "INTERNAL_IP4_DNS",
    "INTERNAL_IP6_ADDRESS",
    "CISCO_DEF_DOMAIN",
    "CISCO_SPLIT_INC",
    "CISCO_SPLIT_INC_0_ADDR",
    "CISCO_SPLIT_INC_0_MASKLEN",
    "CISCO_SPLIT_INC_1_ADDR",
    "CISCO_SPLIT_INC_1_MASKLEN",
];

fn uapi_reply() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("public_key"),
        Just("endpoint"),
        Just("allowed_ip"),
        Just("last_handshake_time_sec"),
        Just("last_handshake_time_nsec"),
        Just("rx_bytes"),
        Just("tx_bytes"),
        Just("persistent_keepalive_interval"),
        Just("protocol_version"),
        Just("errno"),
        Just("private_key"),
        Just("listen_port"),
    ];
    let hex = "[0-9a-f]{64}";
    let line = prop_oneof![
        (key.clone(), value()).prop_map(|(k, v)| format!("{k}={v}")),
        (key, hex).prop_map(|(k, v)| format!("{k}={v}")),
        "[ -~]{0,30}",
    ];
    prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n") + "\n\n")
}

/// Options that must never reach openvpn from a user's file.
const UNSAFE: &[&str] = &[
    "up",
    "down",
    "route-up",
    "route-pre-down",
    "ipchange",
    "tls-verify",
    "plugin",
    "script-security",
    "engine",
    "providers",
    "log",
    "log-append",
    "status",
    "writepid",
    "management",
    "daemon",
    "cd",
    "chroot",
    "tmp-dir",
    "user",
    "group",
    "config",
    "syslog",
    "iproute",
    "learn-address",
    "client-connect",
    "auth-user-pass-verify",
    "tls-export-cert",
];

/// Lines of a .ovpn, including every form a script could be smuggled in.
fn ovpn_line() -> impl Strategy<Value = String> {
    let opt = prop::sample::select(
        &[
            "up",
            "down",
            "route-up",
            "plugin",
            "script-security",
            "log",
            "status",
            "writepid",
            "management",
            "daemon",
            "cd",
            "chroot",
            "tmp-dir",
            "user",
            "group",
            "config",
            "remote",
            "proto",
            "verb",
            "route",
            "dhcp-option",
            "topology",
            "ca",
            "connection",
            "setenv",
            "setenv-safe",
            "auth-user-pass",
            "persist-tun",
            "client",
            "dev",
        ][..],
    );
    let spelled = (
        opt.clone(),
        prop::sample::select(&["", "--", "\"", "'", "setenv opt ", "setenv opt --"][..]),
    )
        .prop_map(|(o, how)| match how {
            "\"" => format!("\"{o}\""),
            "'" => format!("'{o}'"),
            p => format!("{p}{o}"),
        });
    prop_oneof![
        (spelled, value()).prop_map(|(o, v)| format!("{o} {v}")),
        opt.clone().prop_map(|o| format!("<{o}>")),
        opt.prop_map(|o| format!("</{o}>")),
        Just("setenv LD_PRELOAD /x.so".to_string()),
        Just("  </ca> trailing".to_string()),
        "[A-Za-z]{250,260}",
        Just("client".to_string()),
        Just("dev tun".to_string()),
        Just("remote 203.0.113.2 1194 udp".to_string()),
        "\\PC{0,40}",
    ]
}

proptest! {
    #[test]
    fn profiles_never_panic_and_errors_name_the_file(text in prop_oneof![profile_text(), "\\PC{0,200}"]) {
        let path = Path::new("/etc/nsvpn/profiles/fuzz.toml");
        if let Err(e) = Profile::parse("fuzz", path, &text) {
            let msg = format!("{e:#}");
            prop_assert!(msg.contains("fuzz.toml"), "{msg}");
        }
    }

    #[test]
    fn wg_quick_files_never_panic(text in prop_oneof![wg_text(), "\\PC{0,200}"]) {
        if let Err(e) = wgquick::parse(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// The same file saved by Windows Notepad (a UTF-8 byte order mark,
    /// CRLF line ends) reads exactly as the plain one: the same value, or
    /// the same error on the same line.
    #[test]
    fn wg_quick_files_read_the_same_with_a_bom_and_crlf(text in wg_text(), bom in any::<bool>(), crlf in any::<bool>()) {
        let mut windows = if crlf { text.replace('\n', "\r\n") } else { text.clone() };
        if bom {
            windows.insert(0, '\u{feff}');
        }
        prop_assert_eq!(wgquick::parse(&windows), wgquick::parse(&text));
    }

    #[test]
    fn ovpn_files_never_panic(lines in prop::collection::vec(ovpn_line(), 0..12)) {
        let text = lines.join("\n");
        let _ = openvpn::config::check(&text, &mut openvpn::config::no_includes);
        for l in &lines {
            let _ = openvpn::config::words(l);
        }
        let _ = openvpn::last_push_reply(&text);
        let _ = openvpn::failure_reason(&text);
    }

    /// Whatever a .ovpn holds (BOM, CRLF, quotes, `--`, `setenv opt`,
    /// blocks, long lines), what openvpn is given to read holds none of the
    /// options that run programs, load code or write files, and reading it
    /// again gives the same text: nsvpn's reading and openvpn's agree on it.
    #[test]
    fn what_openvpn_reads_is_safe_and_stable(
        bom in any::<bool>(), crlf in any::<bool>(),
        lines in prop::collection::vec(ovpn_line(), 0..14),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let text = format!("{}{}", if bom { "\u{feff}" } else { "" }, lines.join(nl));
        if let Ok(c) = openvpn::config::check(&text, &mut openvpn::config::no_includes) {
            let again = openvpn::config::check(&c.text, &mut openvpn::config::no_includes);
            prop_assert!(again.as_ref().is_ok_and(|a| a.text == c.text && a.warnings.is_empty()), "{:?} -> {:?}", c.text, again);
            let mut block: Option<String> = None;
            for l in c.text.lines() {
                if let Some(b) = &block {
                    if l == format!("</{b}>") { block = None; }
                    continue;
                }
                let w = openvpn::config::words(l).unwrap();
                let Some(first) = w.first() else { continue };
                if let Some(tag) = first.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                    if tag != "connection" { block = Some(tag.to_string()); }
                    prop_assert!(!UNSAFE.contains(&tag), "{tag} block in {:?}", c.text);
                    continue;
                }
                let opt = if w.len() > 2 && w[0] == "setenv" && w[1] == "opt" { &w[2] } else { &w[0] };
                prop_assert!(!UNSAFE.contains(&opt.as_str()), "{opt} in {:?}", c.text);
                if opt == "setenv" {
                    prop_assert!(!w.get(1).is_some_and(|n| n.starts_with("LD_") || n == "PATH"), "{l}");
                }
            }
        }
    }

    #[test]
    fn openvpn_script_environments_never_panic(env in env_of(OPENVPN_ENV), pushed in prop::option::of(prop::collection::vec(value(), 0..4))) {
        let cfg = openvpn::OvpnConfig::default();
        let _ = openvpn::setup_from_env(&env, pushed.as_deref(), &cfg);
    }

    #[test]
    fn openconnect_script_environments_never_panic(env in env_of(OPENCONNECT_ENV), reason in "[ -~]{0,16}", args in prop::collection::vec(value(), 0..6)) {
        let _ = openconnect::setup_from_env(&env);
        let _ = openconnect::Reason::parse(&reason);
        let _ = openconnect::check_args(&args);
        let _ = openconnect::failure_reason(&reason);
    }

    #[test]
    fn uapi_replies_never_panic(reply in prop_oneof![uapi_reply(), "\\PC{0,200}"]) {
        let _ = userspace::parse_get(&reply);
    }

    #[test]
    fn addresses_never_panic_and_round_trip(s in prop_oneof![value(), "[0-9a-f.:/]{0,40}"]) {
        if let Ok(net) = IpNet::from_str(&s) {
            prop_assert_eq!(IpNet::from_str(&net.to_string()).ok(), Some(net));
        }
    }
}
