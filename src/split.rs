//! Split tunnel: the addresses of the user-mode network stack inside a
//! split profile's namespace, the routes that keep the kill switch, and the
//! split resolver's servers.
//!
//! Inside the namespace:
//! - the VPN's routes (metric 0) win;
//! - beneath them, the same prefixes and the VPN's DNS servers are
//!   `unreachable` (metric [`KILL_METRIC`]): when the tunnel dies, traffic
//!   for them fails at once instead of taking the default route;
//! - beneath those, with `internet`, the default route through the stack
//!   (metric [`STACK_METRIC`]);
//! - before all of them, rules send the `direct` prefixes to a table of
//!   their own whose only route is through the stack: they go direct even
//!   when the VPN claims them.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;

use crate::dnsfiles::{self, DnsConfig};
use crate::names::Names;
use crate::paths;
use crate::profile::Split;

/// The stack's network inside the namespace: link-local, so it never hides
/// an address a VPN routes (veth subnets use 169.254.1-168.x).
pub const STACK_CIDR: &str = "169.254.250.0/24";
/// The stack's tap device inside the namespace.
pub const STACK_DEVICE: &str = "nsvs0";
/// The namespace's address on the stack's network.
pub const STACK_GUEST: Ipv4Addr = Ipv4Addr::new(169, 254, 250, 100);
/// The stack's gateway: what goes there leaves as the host's own sockets.
pub const STACK_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 250, 2);
/// The stack's DNS address: it asks the host's resolver.
pub const STACK_DNS: Ipv4Addr = Ipv4Addr::new(169, 254, 250, 3);
pub const STACK_PREFIX: u8 = 24;

/// The metric of the kill switch's `unreachable` routes.
pub const KILL_METRIC: u32 = 4000;
/// The metric of the default route through the stack.
pub const STACK_METRIC: u32 = 5000;
/// The table of the `direct` prefixes' route, and the priority of their rules.
pub const DIRECT_TABLE: u32 = 100;
pub const DIRECT_RULE_PRIORITY: u32 = 100;

/// The names that go to the VPN's servers: the profile's `[dns] domains`,
/// else the VPN's own domains (its search list).
pub fn domains(split: &Split, dns: &DnsConfig) -> Vec<String> {
    split.domains.clone().unwrap_or_else(|| dns.search.clone())
}

/// dnsmasq's servers: each split domain to each of the VPN's servers (or,
/// with none, to nobody: a split name never goes to the host), and every
/// other name to the host's resolver, through the stack.
pub fn render_servers(domains: &[String], vpn_servers: &[IpAddr]) -> String {
    let mut s = String::from("# Written by nsvpn: the split resolver's servers.\n");
    for d in domains {
        if vpn_servers.is_empty() {
            s.push_str(&format!("server=/{d}/\n"));
        }
        for v in vpn_servers {
            s.push_str(&format!("server=/{d}/{v}\n"));
        }
    }
    s.push_str(&format!("server={STACK_DNS}\n"));
    s
}

/// What the split resolver's servers file says: the split domains and the
/// VPN's servers they go to (every other name goes to the stack's DNS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsSplit {
    pub domains: Vec<String>,
    pub vpn_servers: Vec<IpAddr>,
}

/// Reads back what [`render_servers`] wrote.
pub fn parse_servers(text: &str) -> DnsSplit {
    let mut out = DnsSplit::default();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("server=/") else {
            continue;
        };
        let Some((domain, server)) = rest.split_once('/') else {
            continue;
        };
        if !out.domains.iter().any(|d| d == domain) {
            out.domains.push(domain.to_string());
        }
        if let Ok(a) = server.parse::<IpAddr>()
            && !out.vpn_servers.contains(&a)
        {
            out.vpn_servers.push(a);
        }
    }
    out
}

/// The profile's DNS split now, if it splits names (its resolver's file).
pub fn read_dns_split(profile: &str) -> Option<DnsSplit> {
    let text = std::fs::read_to_string(paths::resolver_servers(profile)).ok()?;
    Some(parse_servers(&text))
}

/// Writes the namespace's DNS files for a split profile. With split domains,
/// resolv.conf points at the split resolver on the namespace's loopback and
/// its servers file is (re)written, and a running resolver re-reads it;
/// without any, every name goes to the VPN's servers, as in a sealed profile.
pub fn write_dns(names: &Names, dns: &DnsConfig, split: &Split) -> Result<()> {
    let domains = domains(split, dns);
    let servers_file = paths::resolver_servers(&names.profile);
    if domains.is_empty() {
        let _ = std::fs::remove_file(&servers_file);
        dnsfiles::write(&names.netns, &names.profile, dns)?;
        return Ok(());
    }
    std::fs::create_dir_all(paths::profile_dir(&names.profile))?;
    crate::util::write_atomic(
        &servers_file,
        render_servers(&domains, &dns.servers).as_bytes(),
        0o644,
    )?;
    let local = DnsConfig {
        servers: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        search: dns.search.clone(),
        hosts: dns.hosts.clone(),
    };
    dnsfiles::write(&names.netns, &names.profile, &local)?;
    let marker = servers_file.display().to_string();
    if let Some(pid) = crate::util::read_pid(&paths::pid_file(&names.profile, "dnsmasq"))
        && crate::util::runs(pid, "dnsmasq", marker.as_bytes())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_go_to_the_vpn_and_the_rest_to_the_host() {
        let d = vec!["corp.internal".to_string(), "corp.example".to_string()];
        insta::assert_snapshot!(format!(
            "{}---\n{}",
            render_servers(
                &d,
                &["10.20.0.53".parse().unwrap(), "10.20.0.54".parse().unwrap()]
            ),
            render_servers(&d[..1], &[])
        ));
    }

    #[test]
    fn the_servers_file_reads_back() {
        let d = vec!["corp.internal".to_string(), "corp.example".to_string()];
        let v: Vec<IpAddr> = vec!["10.20.0.53".parse().unwrap(), "fd00::53".parse().unwrap()];
        assert_eq!(
            parse_servers(&render_servers(&d, &v)),
            DnsSplit {
                domains: d.clone(),
                vpn_servers: v
            }
        );
        assert_eq!(
            parse_servers(&render_servers(&d, &[])),
            DnsSplit {
                domains: d,
                vpn_servers: vec![]
            }
        );
    }
}
