//! WireGuard: the device configuration nsvpn applies, and the two back-ends
//! that apply it (kernel over generic netlink, `wireguard-go` over UAPI).

pub mod connect;
pub mod kernel;
pub mod userspace;
pub mod wgquick;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::backend::vpn::{RawVpn, Vpn};
use crate::backend::wireguard::wgquick::{Key, WgQuick};
use crate::backend::{at, read_config};
use crate::ipnet::IpNet;
use crate::profile::{Profile, Source};
use crate::trust;

/// Keepalive interval used for a moment after `up` to make the first
/// handshake happen now, for peers whose file sets none.
pub const TRIGGER_KEEPALIVE: u16 = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Implementation {
    Kernel,
    Userspace,
}

impl std::fmt::Display for Implementation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Implementation::Kernel => "kernel",
            Implementation::Userspace => "userspace (wireguard-go)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub public_key: Key,
    pub preshared_key: Option<Key>,
    pub endpoint: Option<SocketAddr>,
    /// The endpoint as the file wrote it (a name, before resolution).
    pub endpoint_text: Option<String>,
    pub allowed_ips: Vec<IpNet>,
    pub keepalive: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    pub private_key: Key,
    pub listen_port: Option<u16>,
    pub peers: Vec<PeerConfig>,
}

/// What a device reports about one peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerStatus {
    pub public_key: String,
    pub endpoint: Option<String>,
    /// Seconds since the epoch of the last completed handshake.
    pub last_handshake: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub allowed_ips: Vec<String>,
}

impl DeviceConfig {
    /// Resolves endpoint names (in the calling thread's namespace, the host's)
    /// and turns a parsed wg-quick file into the device configuration.
    pub fn from_wgquick(wg: &WgQuick) -> Result<DeviceConfig> {
        let mut peers = Vec::new();
        for p in &wg.peers {
            let endpoint = match &p.endpoint {
                None => None,
                Some(ep) => {
                    let text = ep.to_string();
                    let addr = (ep.host.as_str(), ep.port)
                        .to_socket_addrs()
                        .map_err(|e| anyhow!("cannot resolve the endpoint {text}: {e}"))?
                        .next()
                        .ok_or_else(|| anyhow!("the endpoint {text} resolves to no address"))?;
                    Some(addr)
                }
            };
            peers.push(PeerConfig {
                public_key: p.public_key,
                preshared_key: p.preshared_key,
                endpoint,
                endpoint_text: p.endpoint.as_ref().map(|e| e.to_string()),
                allowed_ips: p.allowed_ips.clone(),
                keepalive: p.persistent_keepalive,
            });
        }
        Ok(DeviceConfig {
            private_key: wg.private_key,
            listen_port: wg.listen_port,
            peers,
        })
    }
}

/// Whether an error is EADDRINUSE: the ListenPort is held by another socket
/// on the host. wireguard-go refuses the port at once (UAPI errno -98,
/// carried as an `io::Error`); the kernel takes it while the link is down
/// and refuses to bring the link up (rtnetlink), or, were the link up,
/// refuses it over generic netlink (an `io::Error` again).
pub fn addr_in_use(e: &anyhow::Error) -> bool {
    let eaddrinuse = Some(nix::errno::Errno::EADDRINUSE as i32);
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == eaddrinuse
            || c.downcast_ref::<rtnetlink::Error>()
                .and_then(crate::netlink::errno)
                == eaddrinuse
    })
}

/// Either implementation answers the same requests.
impl Implementation {
    /// Applies the whole configuration (keys, port, peers) to device `ifname`
    /// in the calling thread's namespace (kernel) or over its UAPI socket.
    /// Keepalives start off: they are set once the device is up.
    pub async fn configure(self, ifname: &str, cfg: &DeviceConfig) -> Result<()> {
        match self {
            Implementation::Kernel => kernel::configure(ifname, cfg).await,
            Implementation::Userspace => {
                userspace::request(ifname, &userspace::render_set(cfg)).map(|_| ())
            }
        }
    }

    /// Sets the persistent keepalive of each peer (by public key). Turning a
    /// keepalive on while the device is up sends one at once, which starts a
    /// handshake. `ns` is the namespace the device is in.
    pub async fn set_keepalives(
        self,
        ifname: &str,
        ns: std::os::fd::BorrowedFd<'_>,
        peers: &[(Key, u16)],
    ) -> Result<()> {
        match self {
            Implementation::Kernel => kernel::set_keepalives(ifname, ns, peers).await,
            Implementation::Userspace => {
                userspace::request(ifname, &userspace::render_keepalives(peers)).map(|_| ())
            }
        }
    }

    /// The peers' state as the device reports it. `ns` is the namespace the
    /// device is in.
    pub async fn peers(
        self,
        ifname: &str,
        ns: std::os::fd::BorrowedFd<'_>,
    ) -> Result<Vec<PeerStatus>> {
        match self {
            Implementation::Kernel => kernel::peers(ifname, ns).await,
            Implementation::Userspace => {
                userspace::parse_get(&userspace::request(ifname, "get=1\n\n")?)
            }
        }
    }
}

/// A WireGuard profile, read and checked.
pub struct Prepared {
    pub wg: WgQuick,
    pub device: DeviceConfig,
    pub force_userspace: bool,
    /// How long to wait for the first handshake.
    pub wait: Duration,
}

/// Reads and checks the wg-quick file (and that wireguard-go is there when
/// the profile asks for it).
/// The `[vpn]` fields this kind takes.
pub const FIELDS: &[&str] = &["config", "userspace"];

/// `[vpn]` with kind = "wireguard": the wg-quick file and `userspace`.
pub(crate) fn settings(src: &Source, v: RawVpn) -> Result<Vpn> {
    let config = v
        .config
        .ok_or_else(|| src.field("vpn.config", "is missing: name the wg-quick file".into()))?;
    Ok(Vpn::WireGuard {
        config: src.file("vpn.config", &config)?,
        userspace: v.userspace.unwrap_or(false),
    })
}

pub fn prepare(
    profile: &Profile,
    config: &Path,
    force_userspace: bool,
    wait: Duration,
) -> Result<Prepared> {
    let text = read_config(profile, "vpn.config", config)?;
    trust::warn_if_exposed(config, &at(profile, "vpn.config"));
    let where_ = || format!("{} ({})", at(profile, "vpn.config"), config.display());
    let wg = wgquick::parse(&text).map_err(|e| anyhow!("{}: {e}", where_()))?;
    for w in &wg.warnings {
        eprintln!("nsvpn: warning: {}: {w}", config.display());
    }
    let device = DeviceConfig::from_wgquick(&wg).with_context(where_)?;
    if force_userspace {
        userspace::find_program()?;
    }
    Ok(Prepared {
        wg,
        device,
        force_userspace,
        wait,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's refusals, as `kernel::configure` (genetlink) and
    /// `Netlink::set_up` (rtnetlink, bringing the link up) wrap them.
    #[test]
    fn the_kernels_eaddrinuse_is_told_apart() {
        let genl = |errno| {
            anyhow!(std::io::Error::from_raw_os_error(errno))
                .context("the kernel refused the WireGuard request")
                .context("cannot configure WireGuard device nsvt-x")
        };
        let rtnl = |errno: i32| {
            let mut m = netlink_packet_core::ErrorMessage::default();
            m.code = std::num::NonZeroI32::new(-errno);
            anyhow!(rtnetlink::Error::NetlinkError(m)).context("cannot bring link 15 up")
        };
        assert!(addr_in_use(&genl(98)));
        assert!(addr_in_use(&rtnl(98)));
        assert!(!addr_in_use(&genl(22)));
        assert!(!addr_in_use(&rtnl(17)));
        assert!(!addr_in_use(&anyhow!("cannot reach wireguard-go")));
    }
}
