//! The per-namespace configuration files in /etc/netns/nsvpn-<profile>/,
//! which `exec` (and `ip netns exec`) bind over their /etc twins.

use std::fs;

use crate::paths;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The files nsvpn writes in /etc/netns/nsvpn-<profile>/, for every kind
/// of profile (a split profile's resolv.conf names its resolver on the
/// namespace's loopback, which reads its own servers from /run/nsvpn):
/// what a service or a container joining the namespace needs over /etc.
pub const FILES: [&str; 3] = ["resolv.conf", "hosts", "nsswitch.conf"];

/// What goes into the three files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DnsConfig {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub hosts: Vec<(String, IpAddr)>,
}

pub fn render_resolv_conf(profile: &str, cfg: &DnsConfig) -> String {
    let mut s =
        format!("# Written by nsvpn for profile {profile}; seen only inside its namespace.\n");
    if cfg.servers.is_empty() {
        s.push_str("# The VPN provides no DNS server and the profile names none:\n");
        s.push_str("# names resolve from /etc/hosts only.\n");
        s.push_str("nameserver 127.0.0.1\n");
    }
    for ns in &cfg.servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !cfg.search.is_empty() {
        s.push_str(&format!("search {}\n", cfg.search.join(" ")));
    }
    s
}

pub fn render_hosts(profile: &str, hostname: &str, cfg: &DnsConfig) -> String {
    let mut s =
        format!("# Written by nsvpn for profile {profile}; seen only inside its namespace.\n");
    s.push_str("127.0.0.1\tlocalhost\n");
    s.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !hostname.is_empty() && crate::profile::is_hostname(hostname) {
        s.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for (name, ip) in &cfg.hosts {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s
}

/// The host's nsswitch.conf with its `hosts:` line replaced by `files dns`:
/// glibc's `resolve`, `mdns*` and `myhostname` modules talk to host daemons
/// over unix sockets that ignore network namespaces. Every other database
/// (passwd, group, ...) stays as the host has it.
pub fn render_nsswitch(profile: &str, host_nsswitch: &str) -> String {
    let mut s = format!(
        "# Written by nsvpn for profile {profile}: the host's file, with name lookups\n# kept inside the namespace (files, then the profile's DNS).\n"
    );
    let mut replaced = false;
    let mut skipping_continuation = false;
    for line in host_nsswitch.lines() {
        if skipping_continuation {
            skipping_continuation = line.trim_end().ends_with('\\');
            continue;
        }
        if line.trim_start().starts_with("hosts:") {
            if !replaced {
                s.push_str("hosts:          files dns\n");
                replaced = true;
            }
            skipping_continuation = line.trim_end().ends_with('\\');
            continue;
        }
        s.push_str(line);
        s.push('\n');
    }
    if !replaced {
        s.push_str("hosts:          files dns\n");
    }
    s
}

fn write_file(path: &Path, content: &str) -> Result<()> {
    // Readable by all whatever the caller's umask (sudo keeps a user's
    // 077): programs inside read these files as the user.
    crate::util::write_atomic(path, content.as_bytes(), 0o644)
}

/// Writes resolv.conf, hosts and nsswitch.conf for a profile's namespace.
pub fn write(netns: &str, profile: &str, cfg: &DnsConfig) -> Result<PathBuf> {
    let dir = paths::netns_etc(netns);
    fs::create_dir_all(&dir)
        .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let host_nsswitch = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let [resolv, hosts, nsswitch] = FILES;
    write_file(&dir.join(resolv), &render_resolv_conf(profile, cfg))?;
    write_file(&dir.join(hosts), &render_hosts(profile, &hostname, cfg))?;
    write_file(
        &dir.join(nsswitch),
        &render_nsswitch(profile, &host_nsswitch),
    )?;
    // The copy exec lays over /etc, made now rather than by the first exec
    // (which makes it anyway when this fails).
    if let Err(e) = crate::overlay::keep_files(profile, netns) {
        crate::vlog!("{e:#}");
    }
    Ok(dir)
}

/// Removes the profile's /etc/netns directory (and /etc/netns itself when
/// nsvpn created it and it is now empty). Missing is fine.
pub fn remove(netns: &str) -> Result<()> {
    let dir = paths::netns_etc(netns);
    match fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
    Ok(())
}

/// Reads back the DNS servers and search domains of a written resolv.conf.
pub fn read_resolv_conf(netns: &str) -> Option<(Vec<String>, Vec<String>)> {
    let text = fs::read_to_string(paths::netns_etc(netns).join("resolv.conf")).ok()?;
    let mut servers = Vec::new();
    let mut search = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => servers.extend(w.next().map(str::to_string)),
            Some("search") => search.extend(w.map(str::to_string)),
            _ => {}
        }
    }
    Some((servers, search))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DnsConfig {
        DnsConfig {
            servers: vec!["10.20.0.53".parse().unwrap(), "fd20::53".parse().unwrap()],
            search: vec!["acme.internal".into(), "internal".into()],
            hosts: vec![("db.acme.internal".into(), "10.20.1.5".parse().unwrap())],
        }
    }

    #[test]
    fn resolv_conf() {
        insta::assert_snapshot!(render_resolv_conf("acme", &cfg()));
        insta::assert_snapshot!(
            "resolv_conf_without_servers",
            render_resolv_conf(
                "acme",
                &DnsConfig {
                    servers: vec![],
                    search: vec![],
                    hosts: vec![]
                }
            )
        );
    }

    #[test]
    fn hosts() {
        insta::assert_snapshot!(render_hosts("acme", "laptop", &cfg()));
    }

    #[test]
    fn nsswitch_replaces_only_hosts() {
        let host = "# /etc/nsswitch.conf\npasswd:         files systemd sss\ngroup:          files systemd\nhosts:          files mdns4_minimal [NOTFOUND=return] resolve [!UNAVAIL=return] dns myhostname\nnetworks:       files\n";
        let out = render_nsswitch("acme", host);
        insta::assert_snapshot!(out);
        assert!(!out.contains("resolve"));
        assert!(!out.contains("mdns"));
        assert!(out.contains("passwd:         files systemd sss"));
        assert!(render_nsswitch("acme", "").contains("hosts:          files dns"));
    }
}
