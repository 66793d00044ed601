//! Kernel WireGuard, configured over generic netlink.

use std::os::fd::BorrowedFd;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use genetlink::GenetlinkHandle;
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardDeviceFlags, WireguardMessage, WireguardPeer, WireguardPeerAttribute,
    WireguardPeerFlags,
};

use super::{DeviceConfig, PeerStatus};
use crate::backend::wireguard::wgquick::Key;
use crate::ipnet::IpNet;

fn allowed_ip(net: &IpNet) -> WireguardAllowedIp {
    WireguardAllowedIp(vec![
        WireguardAllowedIpAttr::Family(if net.is_ipv4() {
            WireguardAddressFamily::Ipv4
        } else {
            WireguardAddressFamily::Ipv6
        }),
        WireguardAllowedIpAttr::IpAddr(net.network()),
        WireguardAllowedIpAttr::Cidr(net.prefix()),
    ])
}

/// The SET_DEVICE message for a whole configuration. Keepalives are 0 here.
pub fn set_device_message(ifname: &str, cfg: &DeviceConfig) -> WireguardMessage {
    let peers = cfg
        .peers
        .iter()
        .map(|p| {
            let mut attrs = vec![
                WireguardPeerAttribute::PublicKey(p.public_key.0),
                WireguardPeerAttribute::Flags(WireguardPeerFlags::ReplaceAllowedIps),
                WireguardPeerAttribute::PersistentKeepalive(0),
            ];
            if let Some(k) = p.preshared_key {
                attrs.push(WireguardPeerAttribute::PresharedKey(k.0));
            }
            if let Some(e) = p.endpoint {
                attrs.push(WireguardPeerAttribute::Endpoint(e));
            }
            attrs.push(WireguardPeerAttribute::AllowedIps(
                p.allowed_ips.iter().map(allowed_ip).collect(),
            ));
            WireguardPeer(attrs)
        })
        .collect();
    let mut attributes = vec![
        WireguardAttribute::IfName(ifname.to_string()),
        WireguardAttribute::Flags(WireguardDeviceFlags::ReplacePeers),
        WireguardAttribute::PrivateKey(cfg.private_key.0),
    ];
    if let Some(p) = cfg.listen_port {
        attributes.push(WireguardAttribute::ListenPort(p));
    }
    attributes.push(WireguardAttribute::Peers(peers));
    WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes,
    }
}

/// The SET_DEVICE message that changes only the peers' keepalives.
pub fn keepalive_message(ifname: &str, peers: &[(Key, u16)]) -> WireguardMessage {
    WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes: vec![
            WireguardAttribute::IfName(ifname.to_string()),
            WireguardAttribute::Peers(
                peers
                    .iter()
                    .map(|(k, secs)| {
                        WireguardPeer(vec![
                            WireguardPeerAttribute::PublicKey(k.0),
                            WireguardPeerAttribute::Flags(WireguardPeerFlags::UpdateOnly),
                            WireguardPeerAttribute::PersistentKeepalive(*secs),
                        ])
                    })
                    .collect(),
            ),
        ],
    }
}

fn connect() -> Result<GenetlinkHandle> {
    let (conn, handle, _) =
        genetlink::new_connection().context("cannot open a generic netlink socket")?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A generic netlink connection inside namespace `ns`.
fn connect_in(ns: BorrowedFd<'_>) -> Result<GenetlinkHandle> {
    let rt = tokio::runtime::Handle::current();
    let (conn, handle, _) = crate::netns::run_in(ns, move || {
        let _guard = rt.enter();
        genetlink::new_connection().context("cannot open a generic netlink socket in the namespace")
    })?;
    tokio::spawn(conn);
    Ok(handle)
}

async fn send(
    handle: &mut GenetlinkHandle,
    msg: WireguardMessage,
    flags: u16,
) -> Result<Vec<WireguardMessage>> {
    let mut nl = NetlinkMessage::from(GenlMessage::from_payload(msg));
    nl.header.flags = flags;
    let mut replies = handle
        .request(nl)
        .await
        .map_err(|e| anyhow!("the kernel's WireGuard netlink family is not available: {e}"))?;
    let mut out = Vec::new();
    while let Some(r) = replies.next().await {
        let r = r.map_err(|e| anyhow!("cannot decode the kernel's WireGuard reply: {e}"))?;
        match r.payload {
            NetlinkPayload::InnerMessage(g) => out.push(g.payload),
            NetlinkPayload::Error(e) if e.code.is_some() => {
                return Err(anyhow!(e.to_io()).context("the kernel refused the WireGuard request"));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Applies the configuration to device `ifname` in the calling thread's
/// namespace.
pub async fn configure(ifname: &str, cfg: &DeviceConfig) -> Result<()> {
    let mut h = connect()?;
    send(
        &mut h,
        set_device_message(ifname, cfg),
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .await
    .with_context(|| format!("cannot configure WireGuard device {ifname}"))?;
    Ok(())
}

pub async fn set_keepalives(ifname: &str, ns: BorrowedFd<'_>, peers: &[(Key, u16)]) -> Result<()> {
    let mut h = connect_in(ns)?;
    send(
        &mut h,
        keepalive_message(ifname, peers),
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .await
    .with_context(|| format!("cannot set keepalives on {ifname}"))?;
    Ok(())
}

pub async fn peers(ifname: &str, ns: BorrowedFd<'_>) -> Result<Vec<PeerStatus>> {
    let mut h = connect_in(ns)?;
    let msg = WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes: vec![WireguardAttribute::IfName(ifname.to_string())],
    };
    let replies = send(&mut h, msg, NLM_F_REQUEST | NLM_F_DUMP)
        .await
        .with_context(|| format!("cannot read WireGuard device {ifname}"))?;
    if replies.is_empty() {
        bail!("the kernel reported nothing for WireGuard device {ifname}");
    }
    Ok(peers_from_replies(&replies))
}

/// The peers of a GET_DEVICE dump (which may span several messages).
pub fn peers_from_replies(replies: &[WireguardMessage]) -> Vec<PeerStatus> {
    let mut out = Vec::new();
    for m in replies {
        for a in &m.attributes {
            let WireguardAttribute::Peers(peers) = a else {
                continue;
            };
            for WireguardPeer(attrs) in peers {
                let mut p = PeerStatus {
                    public_key: String::new(),
                    endpoint: None,
                    last_handshake: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    allowed_ips: Vec::new(),
                };
                for a in attrs {
                    match a {
                        WireguardPeerAttribute::PublicKey(k) => p.public_key = Key(*k).to_base64(),
                        WireguardPeerAttribute::Endpoint(e) => p.endpoint = Some(e.to_string()),
                        WireguardPeerAttribute::LastHandshake(t) if t.seconds > 0 => {
                            p.last_handshake = Some(t.seconds as u64)
                        }
                        WireguardPeerAttribute::RxBytes(b) => p.rx_bytes = *b,
                        WireguardPeerAttribute::TxBytes(b) => p.tx_bytes = *b,
                        WireguardPeerAttribute::AllowedIps(ips) => {
                            for WireguardAllowedIp(ip) in ips {
                                let addr = ip.iter().find_map(|x| match x {
                                    WireguardAllowedIpAttr::IpAddr(a) => Some(*a),
                                    _ => None,
                                });
                                let cidr = ip.iter().find_map(|x| match x {
                                    WireguardAllowedIpAttr::Cidr(c) => Some(*c),
                                    _ => None,
                                });
                                if let (Some(a), Some(c)) = (addr, cidr) {
                                    p.allowed_ips.push(format!("{a}/{c}"));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                // A dump split across messages repeats the peer's key with
                // more allowed IPs: merge them.
                match out
                    .iter_mut()
                    .find(|q: &&mut PeerStatus| q.public_key == p.public_key)
                {
                    Some(q) => q.allowed_ips.extend(p.allowed_ips),
                    None => out.push(p),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::wireguard::PeerConfig;
    use netlink_packet_core::Emitable;

    #[test]
    fn set_device_round_trips_through_the_wire_format() {
        let cfg = DeviceConfig {
            private_key: Key([1; 32]),
            listen_port: Some(51000),
            peers: vec![PeerConfig {
                public_key: Key([2; 32]),
                preshared_key: Some(Key([3; 32])),
                endpoint: Some("203.0.113.2:51820".parse().unwrap()),
                endpoint_text: None,
                allowed_ips: vec![
                    "10.20.0.0/16".parse().unwrap(),
                    "fd20::/64".parse().unwrap(),
                ],
                keepalive: Some(25),
            }],
        };
        let msg = set_device_message("nsvt-acme", &cfg);
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        // The encoded attributes, as the kernel would receive them.
        insta::assert_debug_snapshot!(msg);
        assert!(buf.len() > 100);
        assert!(buf.windows(9).any(|w| w == b"nsvt-acme"));
    }

    #[test]
    fn peers_are_read_from_a_dump() {
        let reply = WireguardMessage {
            cmd: WireguardCmd::GetDevice,
            attributes: vec![
                WireguardAttribute::PrivateKey([9; 32]),
                WireguardAttribute::Peers(vec![WireguardPeer(vec![
                    WireguardPeerAttribute::PublicKey([2; 32]),
                    WireguardPeerAttribute::Endpoint("203.0.113.2:51820".parse().unwrap()),
                    WireguardPeerAttribute::LastHandshake(
                        netlink_packet_wireguard::WireguardTimeSpec {
                            seconds: 1_700_000_000,
                            nano_seconds: 1,
                        },
                    ),
                    WireguardPeerAttribute::RxBytes(10),
                    WireguardPeerAttribute::TxBytes(20),
                    WireguardPeerAttribute::AllowedIps(vec![allowed_ip(
                        &"10.20.0.0/16".parse().unwrap(),
                    )]),
                ])]),
            ],
        };
        let more = WireguardMessage {
            cmd: WireguardCmd::GetDevice,
            attributes: vec![WireguardAttribute::Peers(vec![WireguardPeer(vec![
                WireguardPeerAttribute::PublicKey([2; 32]),
                WireguardPeerAttribute::AllowedIps(vec![allowed_ip(&"fd20::/64".parse().unwrap())]),
            ])])],
        };
        insta::assert_debug_snapshot!(peers_from_replies(&[reply, more]));
    }
}
