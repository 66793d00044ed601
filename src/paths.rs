//! Where nsvpn keeps what it makes at run time, in one place: every module
//! that reads or writes a runtime file asks here, so no module needs another
//! one's internals to find a file (and the lifecycle and the back-ends do
//! not import each other for a path).

use std::path::{Path, PathBuf};

/// Root-owned runtime state: one directory per profile, and the locks.
pub const RUN_DIR: &str = "/run/nsvpn";
/// Named network namespaces, where `ip netns` keeps them.
pub const NETNS_DIR: &str = "/run/netns";
/// Per-namespace `/etc` files, where `ip netns exec` looks for them.
pub const NETNS_ETC: &str = "/etc/netns";
/// wireguard-go's UAPI sockets.
pub const WIREGUARD_SOCKETS: &str = "/var/run/wireguard";

/// `/run/nsvpn/<profile>/`: readable by all (nothing secret in it).
pub fn profile_dir(profile: &str) -> PathBuf {
    Path::new(RUN_DIR).join(profile)
}

/// `/run/nsvpn/<profile>/private/`: root's alone (sockets, secrets).
pub fn private_dir(profile: &str) -> PathBuf {
    profile_dir(profile).join("private")
}

/// What `up` created, read by every command.
pub fn state_file(profile: &str) -> PathBuf {
    profile_dir(profile).join("state.json")
}

/// The per-profile lock.
pub fn lock_file(profile: &str) -> PathBuf {
    Path::new(RUN_DIR).join(format!("{profile}.lock"))
}

/// A client's log (`wireguard-go`, `openvpn`, `openconnect`), root's alone.
pub fn log_file(profile: &str, program: &str) -> PathBuf {
    profile_dir(profile).join(format!("{program}.log"))
}

/// What a client's hook last applied, for `status`.
pub fn tunnel_record(profile: &str) -> PathBuf {
    profile_dir(profile).join("tunnel.json")
}

/// The socket a waiting `up` hears its client's hook on.
pub fn hook_socket(profile: &str) -> PathBuf {
    private_dir(profile).join("hook.sock")
}

/// openvpn's management socket.
pub fn openvpn_management(profile: &str) -> PathBuf {
    private_dir(profile).join("openvpn.sock")
}

/// The file that names a namespace.
pub fn netns(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// `/etc/netns/<namespace>/`.
pub fn netns_etc(netns: &str) -> PathBuf {
    Path::new(NETNS_ETC).join(netns)
}

/// wireguard-go's UAPI socket for a tunnel device.
pub fn wireguard_socket(ifname: &str) -> PathBuf {
    Path::new(WIREGUARD_SOCKETS).join(format!("{ifname}.sock"))
}

/// The pid of a helper nsvpn started for the profile (`slirp4netns`,
/// `dnsmasq`).
pub fn pid_file(profile: &str, program: &str) -> PathBuf {
    profile_dir(profile).join(format!("{program}.pid"))
}

/// The split resolver's servers (dnsmasq re-reads them on SIGHUP).
pub fn resolver_servers(profile: &str) -> PathBuf {
    profile_dir(profile).join("dns-servers")
}

/// The idle watcher's socket, where `exec`, `forward` and the kept
/// forwarder say they use the profile (writable by all; see `idle.rs`).
pub fn use_socket(profile: &str) -> PathBuf {
    profile_dir(profile).join("use.sock")
}

/// What the idle watcher last saw, for `status`.
pub fn idle_record(profile: &str) -> PathBuf {
    profile_dir(profile).join("idle.json")
}

/// There while the idle watcher takes the profile down.
pub fn going_down(profile: &str) -> PathBuf {
    profile_dir(profile).join("going-down")
}
