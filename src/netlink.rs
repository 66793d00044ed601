//! Typed link, address and route values, mapped to rtnetlink in this one
//! place. A `Netlink` is bound to the namespace its socket was created in.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{Context, Result, anyhow};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType,
};
use rtnetlink::{
    Handle, LinkMessageBuilder, LinkUnspec, LinkWireguard, LinkXfrm, RouteMessageBuilder,
};

use crate::ipnet::IpNet;

/// A link as nsvpn needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub up: bool,
    pub mtu: Option<u32>,
    /// Whether the link has a carrier (a tun device with no process
    /// attached has none).
    #[serde(skip)]
    pub carrier: Option<bool>,
    /// Bytes received and sent, from the kernel's counters.
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Address {
    pub link: u32,
    pub net: IpNet,
}

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    pub dest: IpNet,
    pub link: Option<u32>,
    pub gateway: Option<IpAddr>,
    /// Link scope (a directly connected network) rather than universe.
    pub link_scope: bool,
    /// Its metric; the lowest wins among routes to the same prefix.
    pub metric: Option<u32>,
    /// An `unreachable` route: traffic for `dest` fails at once.
    pub unreachable: bool,
    /// Its routing table, when not the main one.
    pub table: Option<u32>,
}

impl Route {
    /// A route to `dest` straight out of `link` (no gateway), as for a tunnel.
    pub fn via_link(dest: IpNet, link: u32) -> Route {
        Route {
            dest: dest.trunc(),
            link: Some(link),
            gateway: None,
            link_scope: true,
            metric: None,
            unreachable: false,
            table: None,
        }
    }

    /// A route to `dest` through the gateway `gateway` on `link`.
    pub fn via_gateway(dest: IpNet, gateway: IpAddr, link: u32) -> Route {
        Route {
            dest: dest.trunc(),
            link: Some(link),
            gateway: Some(gateway),
            link_scope: false,
            metric: None,
            unreachable: false,
            table: None,
        }
    }

    /// An `unreachable` route to `dest` with `metric`: beneath a route to
    /// the same prefix with a lower metric, it takes over when that one goes.
    pub fn unreachable(dest: IpNet, metric: u32) -> Route {
        Route {
            dest: dest.trunc(),
            link: None,
            gateway: None,
            link_scope: false,
            metric: Some(metric),
            unreachable: true,
            table: None,
        }
    }

    pub fn in_table(mut self, table: u32) -> Route {
        self.table = Some(table);
        self
    }
}

/// The errno of a netlink failure, if the kernel sent one.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// A connection in the calling thread's namespace. Needs a tokio runtime.
    pub fn here() -> Result<Netlink> {
        let (conn, handle, _) =
            rtnetlink::new_connection().context("cannot open a netlink socket")?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// A connection inside namespace `ns`: the socket is opened on a thread
    /// that has entered it, then driven by the caller's runtime.
    pub fn in_netns(ns: BorrowedFd<'_>) -> Result<Netlink> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle, _) = crate::netns::run_in(ns, move || {
            let _guard = rt.enter();
            rtnetlink::new_connection().context("cannot open a netlink socket in the namespace")
        })?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    pub async fn links(&self) -> Result<Vec<Link>> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .context("cannot list links")?;
        Ok(msgs.iter().map(link_from_message).collect())
    }

    /// The link called `name`, asked of the kernel by name (one message,
    /// not a dump of every link: a host with many profiles up has many).
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        let got: std::result::Result<Vec<LinkMessage>, rtnetlink::Error> = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_collect()
            .await;
        match got {
            Ok(msgs) => Ok(msgs.iter().map(link_from_message).find(|l| l.name == name)),
            Err(e) if errno(&e) == Some(libc_enodev()) => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot look up link {name}"))),
        }
    }

    /// Creates a veth pair: `host` here, `peer` in `peer_ns`, in link group
    /// `peer_group` there (see [`Netlink::delete_group`]).
    pub async fn create_veth(
        &self,
        host: &str,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
        peer_group: u32,
    ) -> Result<()> {
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .setns_by_fd(peer_ns.as_raw_fd())
            .link_group(peer_group)
            .build();
        let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .with_context(|| format!("cannot create the veth pair {host} / {peer}"))
    }

    /// Creates a kernel WireGuard link. The error is returned raw so that the
    /// caller can tell "no WireGuard in this kernel" from other failures.
    pub async fn create_wireguard(&self, name: &str) -> std::result::Result<(), rtnetlink::Error> {
        self.handle
            .link()
            .add(LinkWireguard::new(name).build())
            .execute()
            .await
    }

    /// Creates an XFRM interface (`ip link add NAME type xfrm if_id IF_ID`):
    /// IPsec policies and SAs with that `if_id` apply to what is routed into
    /// it, and only to that, also once it is moved into another namespace
    /// (they stay in this one). No underlying device: the kernel routes the
    /// ESP packets as its own. The error is returned raw so that the caller
    /// can tell "no XFRM interfaces in this kernel" (EOPNOTSUPP) and "that
    /// if_id is taken" (EEXIST) from other failures.
    pub async fn create_xfrm(
        &self,
        name: &str,
        if_id: u32,
    ) -> std::result::Result<(), rtnetlink::Error> {
        self.handle
            .link()
            .add(
                LinkMessageBuilder::<LinkXfrm>::new(name)
                    .if_id(if_id)
                    .build(),
            )
            .execute()
            .await
    }

    /// Moves a link into namespace `ns` (which drops its addresses and routes).
    pub async fn move_to_netns(&self, index: u32, ns: BorrowedFd<'_>) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .setns_by_fd(ns.as_raw_fd())
            .build();
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .with_context(|| format!("cannot move link {index} into the profile's namespace"))
    }

    /// Renames link `index` (taken down first: the kernel renames only a
    /// link that is down).
    pub async fn rename(&self, index: u32, name: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).down().name(name).build();
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .with_context(|| format!("cannot rename link {index} to {name}"))
    }

    pub async fn set_up(&self, index: u32, mtu: Option<u32>) -> Result<()> {
        let mut b = LinkUnspec::new_with_index(index).up();
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle
            .link()
            .change(b.build())
            .execute()
            .await
            .with_context(|| format!("cannot bring link {index} up"))
    }

    /// Puts a link in link group `group` (`ip link set DEV group N`).
    pub async fn set_group(&self, index: u32, group: u32) -> Result<()> {
        self.handle
            .link()
            .change(LinkUnspec::new_with_index(index).link_group(group).build())
            .execute()
            .await
            .with_context(|| format!("cannot put link {index} in group {group}"))
    }

    /// Deletes every link of link group `group` at once (`ip link delete
    /// group N`): the kernel unregisters them in one batch, with one wait
    /// for its grace periods instead of one per link. False when the group
    /// has no link.
    pub async fn delete_group(&self, group: u32) -> Result<bool> {
        let mut req = self.handle.link().del(0);
        req.message_mut()
            .attributes
            .push(LinkAttribute::Group(group));
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc_enodev()) => Ok(false),
            Err(e) => Err(anyhow!(e).context(format!("cannot delete link group {group}"))),
        }
    }

    pub async fn delete_link(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .with_context(|| format!("cannot delete link {index}"))
    }

    /// Deletes the link called `name` if it exists; true if it did.
    pub async fn delete_link_named(&self, name: &str) -> Result<bool> {
        match self.link_by_name(name).await? {
            Some(l) => match self.handle.link().del(l.index).execute().await {
                Ok(()) => Ok(true),
                Err(e) if errno(&e) == Some(libc_enodev()) => Ok(false),
                Err(e) => Err(anyhow!(e).context(format!("cannot delete link {name}"))),
            },
            None => Ok(false),
        }
    }

    pub async fn add_address(&self, index: u32, net: IpNet) -> Result<()> {
        self.handle
            .address()
            .add(index, net.addr(), net.prefix())
            .execute()
            .await
            .with_context(|| format!("cannot add address {net} to link {index}"))
    }

    /// Sets `local` on a link, with `peer` as the far end of a point-to-point
    /// link when given. Setting an address the link already has is not an error.
    pub async fn set_address(&self, index: u32, local: IpNet, peer: Option<IpAddr>) -> Result<()> {
        let mut req = self
            .handle
            .address()
            .add(index, local.addr(), local.prefix())
            .replace();
        if let Some(p) = peer {
            for a in req.message_mut().attributes.iter_mut() {
                if let AddressAttribute::Address(x) = a {
                    *x = p;
                }
            }
        }
        req.execute().await.with_context(|| match peer {
            Some(p) => format!("cannot add address {local} peer {p} to link {index}"),
            None => format!("cannot add address {local} to link {index}"),
        })
    }

    pub async fn addresses(&self) -> Result<Vec<Address>> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .context("cannot list addresses")?;
        Ok(msgs.iter().filter_map(address_from_message).collect())
    }

    /// Adds a route; one that is already there is fine.
    pub async fn add_route(&self, route: &Route) -> Result<()> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(route.dest.network(), route.dest.prefix())
            .map_err(|e| anyhow!("{e}"))?;
        if let Some(l) = route.link {
            b = b.output_interface(l);
        }
        if let Some(g) = route.gateway {
            b = b.gateway(g).map_err(|e| anyhow!("{e}"))?;
        }
        if route.link_scope && route.gateway.is_none() {
            b = b.scope(RouteScope::Link);
        }
        if let Some(m) = route.metric {
            b = b.priority(m);
        }
        if route.unreachable {
            b = b.kind(RouteType::Unreachable);
        }
        if let Some(t) = route.table {
            b = b.table_id(t);
        }
        match self.handle.route().add(b.build()).execute().await {
            // Already there (a reconnect applies the same routes again).
            Err(e) if errno(&e) == Some(nix::errno::Errno::EEXIST as i32) => Ok(()),
            r => r.with_context(|| format!("cannot add the route to {}", route.dest)),
        }
    }

    /// Sends the IPv4 traffic for `dest` to the routing table `table`, by a
    /// rule of `priority` (rules come before the main table). Already there
    /// is fine.
    pub async fn add_rule_to(&self, dest: IpNet, table: u32, priority: u32) -> Result<()> {
        let IpAddr::V4(network) = dest.network() else {
            return Err(anyhow!("cannot add a rule for {dest}: IPv4 only"));
        };
        let req = self
            .handle
            .rule()
            .add()
            .v4()
            .destination_prefix(network, dest.prefix())
            .table_id(table)
            .priority(priority)
            .action(rtnetlink::packet_route::rule::RuleAction::ToTable);
        match req.execute().await {
            Err(e) if errno(&e) == Some(nix::errno::Errno::EEXIST as i32) => Ok(()),
            r => r.with_context(|| format!("cannot add the rule for {dest}")),
        }
    }

    /// Deletes every IPv4 and IPv6 rule that looks up routing table
    /// `table`; how many there were.
    pub async fn delete_rules_of_table(&self, table: u32) -> Result<usize> {
        use rtnetlink::IpVersion;
        use rtnetlink::packet_route::rule::RuleAttribute;
        let mut n = 0;
        for v in [IpVersion::V4, IpVersion::V6] {
            let rules: Vec<_> = self
                .handle
                .rule()
                .get(v)
                .execute()
                .try_collect()
                .await
                .context("cannot list the routing rules")?;
            for r in rules {
                let t = r
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RuleAttribute::Table(t) => Some(*t),
                        _ => None,
                    })
                    .unwrap_or(u32::from(r.header.table));
                if t == table {
                    self.handle
                        .rule()
                        .del(r)
                        .execute()
                        .await
                        .with_context(|| format!("cannot delete the rule for table {table}"))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Routes of the main table, IPv4 and IPv6, without the kernel's local
    /// and multicast entries.
    pub async fn routes(&self) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        for proto in [RouteMessageBuilder::<IpAddr>::new().build(), {
            let mut m = RouteMessageBuilder::<IpAddr>::new().build();
            m.header.address_family = rtnetlink::packet_route::AddressFamily::Inet6;
            m
        }] {
            let mut m = proto;
            if m.header.address_family != rtnetlink::packet_route::AddressFamily::Inet6 {
                m.header.address_family = rtnetlink::packet_route::AddressFamily::Inet;
            }
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(m)
                .execute()
                .try_collect()
                .await
                .context("cannot list routes")?;
            out.extend(msgs.iter().filter_map(route_from_message));
        }
        Ok(out)
    }
}

/// Where the kernel sends a packet to one address, through the rules and
/// every table (as `ip route get` says it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteTo {
    pub dest: IpAddr,
    /// The link it leaves by (`lo` for a local address).
    pub link: Option<u32>,
    /// The table of the route chosen (255 is `local`, 254 `main`).
    pub table: u32,
    /// The kernel's own local delivery (a `local` route).
    pub local: bool,
    /// An `unreachable`, `prohibit` or `blackhole` route.
    pub refused: bool,
}

impl Netlink {
    /// `ip route get DEST`: the kernel's answer through rules and tables.
    /// None when it has no route at all (ENETUNREACH).
    pub async fn route_to(&self, dest: IpAddr) -> Result<Option<RouteTo>> {
        let prefix = if dest.is_ipv4() { 32 } else { 128 };
        let mut msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dest, prefix)
            .map_err(|e| anyhow!("{e}"))?
            .build();
        // Without it the kernel reports every answer as the main table's.
        msg.header.flags |= rtnetlink::packet_route::route::RouteFlags::LookupTable;
        let mut replies = self.handle.route().get(msg).execute();
        match replies.try_next().await {
            Ok(Some(m)) => {
                let table = m
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Table(t) => Some(*t),
                        _ => None,
                    })
                    .unwrap_or(u32::from(m.header.table));
                let link = m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                });
                Ok(Some(RouteTo {
                    dest,
                    link,
                    table,
                    local: m.header.kind == RouteType::Local,
                    refused: matches!(
                        m.header.kind,
                        RouteType::Unreachable | RouteType::Prohibit | RouteType::BlackHole
                    ),
                }))
            }
            Ok(None) => Ok(None),
            Err(e)
                if matches!(errno(&e), Some(c) if c == nix::errno::Errno::ENETUNREACH as i32
                    || c == nix::errno::Errno::EHOSTUNREACH as i32
                    || c == nix::errno::Errno::EACCES as i32
                    || c == nix::errno::Errno::EINVAL as i32) =>
            {
                Ok(None)
            }
            Err(e) => {
                Err(anyhow!(e).context(format!("cannot ask the kernel for the route to {dest}")))
            }
        }
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

fn link_from_message(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        up: m.header.flags.contains(LinkFlags::Up),
        mtu: None,
        carrier: None,
        rx_bytes: 0,
        tx_bytes: 0,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Mtu(v) => l.mtu = Some(*v),
            LinkAttribute::Carrier(c) => l.carrier = Some(*c != 0),
            LinkAttribute::Stats64(st) => {
                l.rx_bytes = st.rx_bytes;
                l.tx_bytes = st.tx_bytes;
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn address_from_message(m: &AddressMessage) -> Option<Address> {
    let addr = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = addr.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    Some(Address {
        link: m.header.index,
        net: IpNet::new(addr, m.header.prefix_len).ok()?,
    })
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_from_message(m: &RouteMessage) -> Option<Route> {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN)
        || !matches!(m.header.kind, RouteType::Unicast | RouteType::Unreachable)
    {
        return None;
    }
    let v6 = m.header.address_family == rtnetlink::packet_route::AddressFamily::Inet6;
    let mut dest = None;
    let mut link = None;
    let mut gateway = None;
    let mut metric = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dest = route_addr(d),
            RouteAttribute::Oif(i) => link = Some(*i),
            RouteAttribute::Gateway(g) => gateway = route_addr(g),
            RouteAttribute::Priority(p) => metric = Some(*p),
            _ => {}
        }
    }
    let dest = dest.unwrap_or(if v6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    });
    Some(Route {
        dest: IpNet::new(dest, m.header.destination_prefix_length).ok()?,
        link,
        gateway,
        link_scope: m.header.scope == RouteScope::Link,
        metric,
        unreachable: m.header.kind == RouteType::Unreachable,
        table: None,
    })
}
