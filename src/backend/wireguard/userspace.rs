//! Userspace WireGuard: `wireguard-go`, started in the host namespace and
//! configured over its UAPI unix socket (keys in hex there).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::{DeviceConfig, PeerStatus};
use crate::backend::wireguard::wgquick::Key;
use crate::paths::WIREGUARD_SOCKETS;

pub const PROGRAM: &str = "wireguard-go";

/// The UAPI request that sets the whole device.
pub fn render_set(cfg: &DeviceConfig) -> String {
    let mut s = String::from("set=1\n");
    s.push_str(&format!("private_key={}\n", cfg.private_key.to_hex()));
    if let Some(p) = cfg.listen_port {
        s.push_str(&format!("listen_port={p}\n"));
    }
    s.push_str("replace_peers=true\n");
    for p in &cfg.peers {
        s.push_str(&format!("public_key={}\n", p.public_key.to_hex()));
        if let Some(k) = p.preshared_key {
            s.push_str(&format!("preshared_key={}\n", k.to_hex()));
        }
        if let Some(e) = p.endpoint {
            s.push_str(&format!("endpoint={e}\n"));
        }
        s.push_str("persistent_keepalive_interval=0\n");
        s.push_str("replace_allowed_ips=true\n");
        for a in &p.allowed_ips {
            s.push_str(&format!("allowed_ip={a}\n"));
        }
    }
    s.push('\n');
    s
}

/// The UAPI request that sets the peers' keepalives.
pub fn render_keepalives(peers: &[(Key, u16)]) -> String {
    let mut s = String::from("set=1\n");
    for (k, secs) in peers {
        s.push_str(&format!(
            "public_key={}\nupdate_only=true\npersistent_keepalive_interval={secs}\n",
            k.to_hex()
        ));
    }
    s.push('\n');
    s
}

/// Parses the reply to `get=1`: the peers, in order. Private and preshared
/// keys in the reply are skipped, never kept.
pub fn parse_get(reply: &str) -> Result<Vec<PeerStatus>> {
    let mut peers: Vec<PeerStatus> = Vec::new();
    let mut errno = None;
    let mut hs_sec: Option<u64> = None;
    let flush = |peers: &mut Vec<PeerStatus>, hs: &mut Option<u64>| {
        if let Some(p) = peers.last_mut() {
            p.last_handshake = hs.take().filter(|s| *s > 0);
        }
    };
    for line in reply.lines() {
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("wireguard-go sent a line that is not key=value: {line:?}"))?;
        let num = || {
            v.parse::<u64>()
                .map_err(|_| anyhow!("wireguard-go sent {k}={v:?}, not a number"))
        };
        match k {
            "public_key" => {
                flush(&mut peers, &mut hs_sec);
                let key = Key::from_hex(v)
                    .ok_or_else(|| anyhow!("wireguard-go sent a malformed public key"))?;
                peers.push(PeerStatus {
                    public_key: key.to_base64(),
                    endpoint: None,
                    last_handshake: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    allowed_ips: Vec::new(),
                });
            }
            "errno" => errno = Some(num()?),
            _ => {
                let Some(p) = peers.last_mut() else { continue };
                match k {
                    "endpoint" => p.endpoint = Some(v.to_string()),
                    "last_handshake_time_sec" => hs_sec = Some(num()?),
                    "rx_bytes" => p.rx_bytes = num()?,
                    "tx_bytes" => p.tx_bytes = num()?,
                    "allowed_ip" => p.allowed_ips.push(v.to_string()),
                    _ => {}
                }
            }
        }
    }
    flush(&mut peers, &mut hs_sec);
    match errno {
        Some(0) => Ok(peers),
        Some(e) => bail!("wireguard-go refused the request (errno {e})"),
        None => bail!("wireguard-go's reply ended without an errno line"),
    }
}

/// Sends one UAPI request to the device's socket and returns the reply.
pub fn request(ifname: &str, req: &str) -> Result<String> {
    let path = crate::paths::wireguard_socket(ifname);
    let mut s = UnixStream::connect(&path)
        .with_context(|| format!("cannot reach wireguard-go at {}", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(req.as_bytes())
        .with_context(|| format!("cannot send to {}", path.display()))?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // The reply ends with an empty line; read until then.
    loop {
        let n = s
            .read(&mut buf)
            .with_context(|| format!("cannot read from {}", path.display()))?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.ends_with(b"\n\n") {
            break;
        }
    }
    let text = String::from_utf8(reply)
        .map_err(|_| anyhow!("wireguard-go sent a reply that is not text"))?;
    if req.starts_with("set=") {
        let errno = text.lines().find_map(|l| l.strip_prefix("errno="));
        match errno {
            Some("0") => {}
            Some(e) => return Err(refused(ifname, e)),
            None => bail!("wireguard-go closed the connection without an answer"),
        }
    }
    Ok(text)
}

/// wireguard-go's refusal of a `set`: its UAPI errno is a negative errno
/// (-98: EADDRINUSE, the listen port is taken), kept as the cause so that
/// callers can tell which.
pub fn refused(ifname: &str, errno: &str) -> anyhow::Error {
    let what = format!("wireguard-go refused the configuration of {ifname} (errno {errno})");
    match errno.parse::<i32>() {
        Ok(n) if n < 0 => anyhow!(std::io::Error::from_raw_os_error(-n)).context(what),
        _ => anyhow!(what),
    }
}

/// Finds `wireguard-go` on PATH.
pub fn find_program() -> Result<PathBuf> {
    crate::backend::client::find_program(PROGRAM).ok_or_else(|| {
        anyhow!(
            "this kernel has no WireGuard module and {PROGRAM} is not installed: install it \
             (Debian/Ubuntu: apt-get install wireguard-go) or load the module (modprobe wireguard)"
        )
    })
}

/// Starts `wireguard-go -f <ifname>` detached, with its output in `log`.
/// Returns its pid.
///
/// Its UAPI socket is made here and handed to it as descriptor 3
/// (`WG_UAPI_FD`, as wireguard-go's own daemon mode hands it to its child):
/// the socket accepts connections from the moment it exists, so the device
/// is configured at once, with no wait for wireguard-go to open it;
/// wireguard-go answers as soon as it is ready. wireguard-go does not
/// remove a socket it was given: `down` does.
pub fn spawn(ifname: &str, log: &Path) -> Result<u32> {
    let program = find_program()?;
    std::fs::create_dir_all(WIREGUARD_SOCKETS)
        .with_context(|| format!("cannot create {WIREGUARD_SOCKETS}"))?;
    let path = crate::paths::wireguard_socket(ifname);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            bail!(
                "another wireguard-go already serves {ifname} ({} answers); stop it first",
                path.display()
            );
        }
        // Left by a wireguard-go that is gone: nobody answers there.
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove the stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(&path).with_context(|| format!("cannot make {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    let fd = OwnedFd::from(listener);
    crate::backend::client::spawn_with_env(
        &program,
        &["-f".into(), ifname.into()],
        Some(fd.as_fd()),
        &[("WG_UAPI_FD", "3")],
        log,
    )
}

/// Fails with EADDRINUSE (see [`super::addr_in_use`]) when another socket
/// holds UDP `port`. wireguard-go binds its port only once its device is
/// up, after it answered the configuration, and then only logs a failure;
/// so the port is tried here first, the way it will bind it (IPv6 and IPv4
/// at once; IPv4 alone on a host without IPv6).
pub fn check_port_free(port: u16) -> Result<()> {
    use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
    let tried = match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port)) {
        Err(e) if e.raw_os_error() == Some(nix::libc::EAFNOSUPPORT) => {
            UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
        }
        other => other,
    };
    tried
        .map(drop)
        .map_err(|e| anyhow!(e).context(format!("wireguard-go cannot listen on UDP port {port}")))
}

/// The error for a wireguard-go that did not answer its first request:
/// its log says why when it is gone.
pub fn not_ready(e: anyhow::Error, pid: u32, log: &Path) -> anyhow::Error {
    if crate::util::alive(pid) {
        e
    } else {
        anyhow!(
            "wireguard-go exited before it was ready; its log ({}):\n{}",
            log.display(),
            crate::util::tail(log, 10)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::wireguard::PeerConfig;

    fn key(b: u8) -> Key {
        Key([b; 32])
    }

    #[test]
    fn set_request() {
        let cfg = DeviceConfig {
            private_key: key(1),
            listen_port: Some(51000),
            peers: vec![
                PeerConfig {
                    public_key: key(2),
                    preshared_key: Some(key(3)),
                    endpoint: Some("203.0.113.2:51820".parse().unwrap()),
                    endpoint_text: Some("vpn.example:51820".into()),
                    allowed_ips: vec![
                        "10.20.0.0/16".parse().unwrap(),
                        "fd20::/64".parse().unwrap(),
                    ],
                    keepalive: Some(25),
                },
                PeerConfig {
                    public_key: key(4),
                    preshared_key: None,
                    endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
                    endpoint_text: None,
                    allowed_ips: vec![],
                    keepalive: None,
                },
            ],
        };
        insta::assert_snapshot!(render_set(&cfg));
        insta::assert_snapshot!(
            "keepalives",
            render_keepalives(&[(key(2), 25), (key(4), 0)])
        );
    }

    #[test]
    fn a_taken_listen_port_is_told_apart() {
        let e = refused("nsvt-x", "-98");
        assert!(crate::backend::wireguard::addr_in_use(&e));
        assert_eq!(
            format!("{e:#}"),
            format!(
                "wireguard-go refused the configuration of nsvt-x (errno -98): {}",
                std::io::Error::from_raw_os_error(98)
            )
        );
        assert!(!crate::backend::wireguard::addr_in_use(&refused(
            "nsvt-x", "-22"
        )));
        assert!(!crate::backend::wireguard::addr_in_use(&refused(
            "nsvt-x", "junk"
        )));
    }

    #[test]
    fn get_reply() {
        let reply = format!(
            "private_key={}\nlisten_port=40000\npublic_key={}\npreshared_key={}\nprotocol_version=1\n\
             endpoint=203.0.113.2:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n\
             tx_bytes=1234\nrx_bytes=5678\npersistent_keepalive_interval=0\nallowed_ip=10.20.0.0/16\n\
             public_key={}\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n\
             errno=0\n\n",
            key(1).to_hex(),
            key(2).to_hex(),
            key(3).to_hex(),
            key(4).to_hex()
        );
        let peers = parse_get(&reply).unwrap();
        insta::assert_debug_snapshot!(peers);
        assert!(
            !format!("{peers:?}").contains(&key(1).to_base64()),
            "private key leaked"
        );
        assert!(parse_get("errno=22\n\n").is_err());
        assert!(parse_get("garbage\n\n").is_err());
        assert!(parse_get("public_key=zz\nerrno=0\n\n").is_err());
        assert!(parse_get("").is_err());
    }
}
