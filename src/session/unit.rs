//! `nsvpn unit <profile> <service>`: the systemd drop-in that makes an
//! existing service join a profile. systemd enters the namespace itself
//! (`NetworkNamespacePath=`) but does not read /etc/netns: the profile's
//! name service files are bound over /etc's, read-only, in the service's
//! own mount namespace. `BindsTo=` + `After=` tie the service to
//! `nsvpn@<profile>.service`: starting it brings the profile up first,
//! stopping the profile stops it first.
//!
//! Where the host's `/etc/resolv.conf` is a symbolic link (systemd-resolved's
//! stub, resolvconf), systemd binds over the file the link points to, in
//! the service's mount namespace only; the host's resolver sockets are made
//! inaccessible one by one (not their directories), so the bind still has a
//! place to land when the link points into `/run/systemd/resolve/`.

use anyhow::{Result, bail};

use crate::dnsfiles;
use crate::names::Names;
use crate::paths;

/// The unix sockets of the host's resolvers (nscd, systemd-resolved's
/// varlink, avahi): they answer from the host's network whatever namespace
/// the caller is in. `nsvpn exec` hides their directories
/// (`exec::RESOLVER_SOCKET_DIRS`); a service gets the sockets themselves
/// made inaccessible (`-`: fine where one does not exist).
pub const RESOLVER_SOCKETS: [&str; 3] = [
    "/run/nscd/socket",
    "/run/systemd/resolve/io.systemd.Resolve",
    "/run/avahi-daemon/socket",
];

/// The unit name for what the user typed: `backup` and `backup.service`
/// are `backup.service`; templates (`backup@daily`) too. Only services:
/// another kind of unit is refused, naming what to give instead.
pub fn service_name(arg: &str) -> Result<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || ":-_.@\\".contains(c);
    if arg.is_empty() || !arg.chars().all(ok) || arg.starts_with(['@', '.']) || arg.len() > 255 {
        bail!(
            "{arg:?} is not a systemd unit name (letters, digits and :-_.@\\ only, as \
             `systemctl list-units` shows them)"
        );
    }
    let name = if arg.contains('.') {
        arg.to_string()
    } else {
        format!("{arg}.service")
    };
    if !name.ends_with(".service") {
        let kind = name.rsplit('.').next().unwrap_or_default();
        bail!(
            "{arg:?} is not a service (a .{kind} unit): give the service that runs the \
             program, e.g. `nsvpn unit <profile> backup.service`"
        );
    }
    Ok(name)
}

/// Where the drop-in goes.
pub fn dropin_path(profile: &str, service: &str) -> String {
    format!("/etc/systemd/system/{service}.d/nsvpn-{profile}.conf")
}

/// The drop-in's text.
pub fn render(profile: &str, service: &str) -> String {
    let names = Names::for_profile(profile);
    let ns = paths::netns(&names.netns);
    let etc = paths::netns_etc(&names.netns);
    let path = dropin_path(profile, service);
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut s = format!(
        "# {service} joins nsvpn profile {profile}: its network namespace {netns},\n\
         # the profile's DNS and hosts, and nothing else of the host's network.\n\
         # Written by `nsvpn unit {profile} {service}`. Install it with\n\
         #   sudo mkdir -p {dir}\n\
         #   nsvpn unit {profile} {service} | sudo tee {path}\n\
         #   sudo systemctl daemon-reload && sudo systemctl restart {service}\n\
         # Starting {service} brings the profile up first (nsvpn@{profile}.service);\n\
         # stopping the profile (or its failing) stops {service} first.\n\
         [Unit]\n\
         BindsTo=nsvpn@{profile}.service\n\
         After=nsvpn@{profile}.service\n\
         \n\
         [Service]\n\
         NetworkNamespacePath={ns}\n\
         # systemd does not read /etc/netns by itself: the profile's files over\n\
         # /etc's, in the service's own mount namespace (through a symbolic link\n\
         # such as /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf,\n\
         # over the file it points to). A file the host replaces by rename while\n\
         # the service runs loses its bind (the service then reads the host's file:\n\
         # a sealed profile cannot reach the host's DNS servers, a [split] one with\n\
         # internet = true would ask them): restart the service when the host's\n\
         # /etc/resolv.conf changes.\n",
        netns = names.netns,
        ns = ns.display(),
    );
    for f in dnsfiles::FILES {
        s.push_str(&format!(
            "BindReadOnlyPaths={}:/etc/{f}\n",
            etc.join(f).display()
        ));
    }
    s.push_str(
        "# The host's resolvers' sockets answer from the host's network, whatever\n\
         # the namespace: out of reach.\n",
    );
    let hidden: Vec<String> = RESOLVER_SOCKETS.iter().map(|p| format!("-{p}")).collect();
    s.push_str(&format!("InaccessiblePaths={}\n", hidden.join(" ")));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_in() {
        insta::assert_snapshot!(render("acme", "backup.service"));
    }

    #[test]
    fn service_names() {
        let ok = |a: &str| service_name(a).unwrap();
        assert_eq!(ok("backup"), "backup.service");
        assert_eq!(ok("backup.service"), "backup.service");
        assert_eq!(ok("backup@daily"), "backup@daily.service");
        assert_eq!(ok("getty@tty1.service"), "getty@tty1.service");
        let errors: Vec<String> = [
            "backup.timer",
            "../x",
            "a b",
            "",
            ".service",
            "@x",
            "evil\nExecStart=/bin/sh",
        ]
        .iter()
        .map(|a| format!("{a:?}: {:#}", service_name(a).unwrap_err()))
        .collect();
        insta::assert_snapshot!(errors.join("\n"));
    }
}
