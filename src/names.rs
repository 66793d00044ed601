//! Everything nsvpn derives from a profile's name: the namespace, the
//! interface names and the veth addresses. Deterministic, so that `down` can
//! find what an earlier (possibly crashed) `up` created.

use std::net::Ipv4Addr;

use anyhow::{Result, bail};

use crate::ipnet::Ipv4Net;

/// Longest profile name that is used verbatim in interface names.
const VERBATIM_MAX: usize = 10;
/// Interface names are at most 15 bytes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Longest profile name accepted at all.
pub const PROFILE_NAME_MAX: usize = 64;

/// Checks that `name` is a valid profile name: `[a-z0-9][a-z0-9-]*`, at most
/// 64 bytes. Anything else could become a path or a clashing interface name.
pub fn validate_profile_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the profile name is empty");
    }
    if name.len() > PROFILE_NAME_MAX {
        bail!(
            "the profile name {:?} is {} bytes long; at most {PROFILE_NAME_MAX} are allowed",
            name,
            name.len()
        );
    }
    let first = name.as_bytes()[0];
    let ok_first = first.is_ascii_lowercase() || first.is_ascii_digit();
    let ok_rest = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok_first || !ok_rest {
        bail!(
            "the profile name {:?} is not allowed: use lowercase letters, digits and '-', \
             starting with a letter or digit (for example \"acme\" or \"corp-eu\")",
            name
        );
    }
    Ok(())
}

/// FNV-1a, 32 bits: a hash that is stable across Rust versions and platforms,
/// so names and addresses never change under an upgrade.
pub fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The part of an interface name that stands for the profile: the name itself
/// when it is short, else its first four bytes, a '.', and five hex digits of
/// its hash. A '.' never occurs in a profile name, so a shortened name can
/// never equal a verbatim one.
fn short_tag(profile: &str) -> String {
    if profile.len() <= VERBATIM_MAX {
        profile.to_string()
    } else {
        format!(
            "{}.{:05x}",
            &profile[..4],
            fnv1a(profile.as_bytes()) & 0xf_ffff
        )
    }
}

/// The names of everything one profile owns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Names {
    pub profile: String,
    /// Network namespace, a file in /run/netns.
    pub netns: String,
    /// Host end of the veth pair (lives in the host namespace).
    pub host_veth: String,
    /// Namespace end of the veth pair.
    pub ns_veth: String,
    /// The tunnel device (created in the host namespace, moved in).
    pub tunnel: String,
}

impl Names {
    pub fn for_profile(profile: &str) -> Names {
        let tag = short_tag(profile);
        Names {
            profile: profile.to_string(),
            netns: format!("nsvpn-{profile}"),
            host_veth: format!("nsvh-{tag}"),
            ns_veth: format!("nsvn-{tag}"),
            tunnel: format!("nsvt-{tag}"),
        }
    }
}

/// The link group of the links nsvpn puts in a profile's namespace that
/// may all go at once when it goes down (the veth pair's end, a WireGuard
/// device): one `RTM_DELLINK` for the group removes them in one batch. The
/// number only has to be one the namespace's other links (its loopback,
/// the stack's tap, a client's tun, all in group 0) do not have.
pub const LINK_GROUP: u32 = 0x6e76;

/// The /30 (or larger) subnet of the veth pair and the two addresses on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VethAddrs {
    pub subnet: Ipv4Net,
    pub host: Ipv4Addr,
    pub namespace: Ipv4Addr,
}

/// Veth subnets come from link-local space, 169.254.1.0 - 169.254.168.255:
/// no VPN pushes link-local routes, and Docker (172.17/16), Podman (10.88/16)
/// and Tailscale (100.64/10) live elsewhere. 169.254.169.0/24 (cloud
/// metadata), 169.254.170.0/24 (container credentials) and the RFC 3927
/// reserved first and last /24 are never used.
const VETH_BLOCKS: u32 = 168 * 64;

impl VethAddrs {
    /// The deterministic default for a profile.
    pub fn for_profile(profile: &str) -> VethAddrs {
        let index = fnv1a(profile.as_bytes()) % VETH_BLOCKS;
        let third = 1 + index / 64;
        let fourth = (index % 64) * 4;
        let base = Ipv4Addr::new(169, 254, third as u8, fourth as u8);
        Self::from_subnet(Ipv4Net::new(base, 30).expect("/30 is valid"))
            .expect("a /30 has two host addresses")
    }

    /// The first two host addresses of `subnet` (host side first).
    pub fn from_subnet(subnet: Ipv4Net) -> Result<VethAddrs> {
        if subnet.prefix() > 30 {
            bail!("{subnet} is too small for a veth pair: use a /30 or larger");
        }
        let net = u32::from(subnet.network());
        Ok(VethAddrs {
            subnet,
            host: Ipv4Addr::from(net + 1),
            namespace: Ipv4Addr::from(net + 2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names() {
        for ok in ["acme", "corp-eu", "a", "0day", &"x".repeat(64)] {
            validate_profile_name(ok).unwrap();
        }
        for bad in [
            "",
            "Acme",
            "-x",
            "a/b",
            "..",
            "a.b",
            "a b",
            "ä",
            &"x".repeat(65),
        ] {
            assert!(validate_profile_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn interface_names_fit_and_are_distinct() {
        let all = [
            "a",
            "acme",
            "abcdefghij",
            "abcdefghijk",
            "abcdefghijkl",
            &"z".repeat(64),
        ];
        let mut seen = std::collections::HashSet::new();
        for p in all {
            let n = Names::for_profile(p);
            for name in [&n.host_veth, &n.ns_veth, &n.tunnel] {
                assert!(name.len() <= IFNAME_MAX, "{name} is too long");
                assert!(seen.insert(name.clone()), "{name} appears twice");
            }
            assert_eq!(n.netns, format!("nsvpn-{p}"));
        }
        assert_eq!(Names::for_profile("acme").tunnel, "nsvt-acme");
        assert_eq!(Names::for_profile("abcdefghijk").tunnel, "nsvt-abcd.82adb");
    }

    #[test]
    fn veth_addresses_are_stable_and_in_range() {
        let a = VethAddrs::for_profile("acme");
        assert_eq!(a, VethAddrs::for_profile("acme"));
        assert_eq!(a.subnet.to_string(), "169.254.15.188/30");
        assert_eq!(a.host.to_string(), "169.254.15.189");
        assert_eq!(a.namespace.to_string(), "169.254.15.190");
        for i in 0..5000 {
            let v = VethAddrs::for_profile(&format!("p{i}"));
            let o = v.subnet.network().octets();
            assert_eq!((o[0], o[1]), (169, 254));
            assert!((1..=168).contains(&o[2]), "{}", v.subnet);
            assert_eq!(o[3] % 4, 0);
        }
    }

    #[test]
    fn veth_from_subnet() {
        let v = VethAddrs::from_subnet("10.250.0.8/29".parse().unwrap()).unwrap();
        assert_eq!(v.host.to_string(), "10.250.0.9");
        assert_eq!(v.namespace.to_string(), "10.250.0.10");
        assert!(VethAddrs::from_subnet("10.250.0.8/31".parse().unwrap()).is_err());
    }
}
