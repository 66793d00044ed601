//! Small CIDR types: an address with a prefix length. Parsing is strict: the
//! prefix must fit the family, and `/n` may be left out for a single host.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 or IPv6 address with a prefix length, e.g. `10.20.0.0/16`. Host
/// bits may be set (as in an interface address, `10.99.0.2/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

fn max_prefix(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpNet, String> {
        if prefix > max_prefix(&addr) {
            return Err(format!(
                "prefix length /{prefix} is too long for {addr} (at most /{})",
                max_prefix(&addr)
            ));
        }
        Ok(IpNet { addr, prefix })
    }
    /// The single address `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> IpNet {
        IpNet {
            addr,
            prefix: max_prefix(&addr),
        }
    }
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
    /// The network address: host bits cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }
    /// This network with host bits cleared, as a route destination.
    pub fn trunc(&self) -> IpNet {
        IpNet {
            addr: self.network(),
            prefix: self.prefix,
        }
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        let other = IpNet {
            addr: ip,
            prefix: self.prefix,
        };
        self.addr.is_ipv4() == ip.is_ipv4() && other.network() == self.network()
    }
}

/// The prefix length of a dotted netmask such as 255.255.0.0, if its ones
/// are contiguous.
pub fn netmask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 or IPv6 address"))?;
        let prefix = match p {
            None => max_prefix(&addr),
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| format!("{p:?} is not a prefix length"))?,
        };
        IpNet::new(addr, prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, String> {
        IpNet::new(IpAddr::V4(addr), prefix)?;
        Ok(Ipv4Net { addr, prefix })
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    pub fn network(&self) -> Ipv4Addr {
        match IpNet::from(*self).network() {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => unreachable!(),
        }
    }
}

impl From<Ipv4Net> for IpNet {
    fn from(n: Ipv4Net) -> IpNet {
        IpNet {
            addr: IpAddr::V4(n.addr),
            prefix: n.prefix,
        }
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Ipv4Net, String> {
        let n: IpNet = s.parse()?;
        match n.addr {
            IpAddr::V4(a) => Ipv4Net::new(a, n.prefix),
            IpAddr::V6(_) => Err(format!("{s:?} is not an IPv4 network")),
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let n: IpNet = "10.20.1.5/16".parse().unwrap();
        assert_eq!(n.to_string(), "10.20.1.5/16");
        assert_eq!(n.trunc().to_string(), "10.20.0.0/16");
        assert!(n.contains("10.20.255.1".parse().unwrap()));
        assert!(!n.contains("10.21.0.1".parse().unwrap()));
        assert_eq!(
            "fd00::1".parse::<IpNet>().unwrap().to_string(),
            "fd00::1/128"
        );
        assert_eq!(
            "0.0.0.0/0".parse::<IpNet>().unwrap().trunc().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            "fd00:1::5/32".parse::<IpNet>().unwrap().trunc().to_string(),
            "fd00:1::/32"
        );
        assert!(
            "::/0"
                .parse::<IpNet>()
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/-1",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!("fd00::/64".parse::<Ipv4Net>().is_err());
    }
}
