//! The veth pair that links the namespace to the host only: the host's end
//! with the profile's fixed address, the other end moved in and addressed.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use super::{Check, Look, Making, Part};
use crate::backend::wireguard::connect::link_index;
use crate::ipnet::IpNet;
use crate::names::{LINK_GROUP, Names};
use crate::netlink::Netlink;
use crate::procs::Procs;
use crate::state::State;
use crate::unlinking::{self, Unlinked};
use crate::{netns, signals, util, vlog};

/// How long the kernel may take to announce the links deleted.
const UNLINK_LIMIT: Duration = Duration::from_secs(5);

pub struct Veth;

impl Part for Veth {
    fn name(&self) -> &'static str {
        "veth"
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let t0 = Instant::now();
        let names = cx.names;
        let v = cx.profile.veth;
        let ns = cx
            .ns
            .as_ref()
            .ok_or_else(|| anyhow!("the veth pair needs the namespace, which is not made"))?;
        signals::block_on(async {
            let host = Netlink::here()?;
            let inner = Netlink::in_netns(ns.as_fd())?;
            host.create_veth(&names.host_veth, &names.ns_veth, ns.as_fd(), LINK_GROUP)
                .await?;
            crate::vtrace!("veth: pair made");
            let hv = link_index(&host, &names.host_veth).await?;
            crate::vtrace!("veth: host end found");
            // The veth carries only its IPv4 subnet: no IPv6 on the host's
            // end either.
            netns::set_ipv6_disabled(None, &names.host_veth, true)?;
            crate::vtrace!("veth: IPv6 off on the host end");
            let prefix = v.subnet.prefix();
            host.add_address(
                hv,
                IpNet::new(v.host.into(), prefix).map_err(|e| anyhow!(e))?,
            )
            .await?;
            crate::vtrace!("veth: host address");
            host.set_up(hv, None).await?;
            crate::vtrace!("veth: host end up");
            let nv = link_index(&inner, &names.ns_veth).await?;
            crate::vtrace!("veth: inner end found");
            inner
                .add_address(
                    nv,
                    IpNet::new(v.namespace.into(), prefix).map_err(|e| anyhow!(e))?,
                )
                .await?;
            inner.set_up(nv, None).await
        })?;
        cx.own += t0.elapsed();
        vlog!(
            "veth {} <-> {} ({:?})",
            names.host_veth,
            names.ns_veth,
            t0.elapsed()
        );
        Ok(true)
    }

    /// Without its veth the VPN still works, and the namespace stays
    /// sealed; only the host's services at the veth address are out of
    /// reach. So a missing veth degrades the profile; `exec` does not look.
    fn check(&self, look: &mut Look<'_>) -> Check {
        let host_veth = &look.st.names.host_veth;
        if !look.thorough || look.probe.host_has_link(host_veth) {
            return Check::Fine;
        }
        Check::Degraded(format!(
            "the host's end of its veth pair, {host_veth}, is gone: programs inside cannot reach \
             the host at {}; `nsvpn down {p}` then `nsvpn up {p}` makes it again",
            look.st.veth.host,
            p = look.profile
        ))
    }

    fn show(&self, st: &State) -> String {
        format!("{} <-> {}", st.names.host_veth, st.names.ns_veth)
    }

    fn exists(&self, names: &Names, _: &Procs) -> bool {
        netns::host_has_link(&names.host_veth)
    }

    /// Nothing leaves through the veth on its way out: the VPN clients say
    /// goodbye through the host's own network, the helpers need only the
    /// namespace.
    fn independent(&self) -> bool {
        true
    }

    // Deleting one end deletes the pair; the end inside would also go with
    // the namespace, but the host's end is deleted here so that it is gone
    // when `down` returns (the kernel cleans a namespace up later). The end
    // inside is in the namespace's link group, with the WireGuard device:
    // deleting the group removes them all in one batch. A child process
    // asks for that and waits for the kernel to free them (an RCU barrier,
    // 10-25 ms) while this goes on once the kernel has announced the host's
    // end deleted: its addresses and routes are gone then, and its name
    // free (see `unlinking.rs`). If that cannot be seen through, the links
    // are deleted here, waiting: the group, then the host's end by name (a
    // pair made before links had a group, or whose namespace is gone).
    fn remove(&self, names: &Names, _: Option<&State>, problems: &mut Vec<String>) {
        let ns = netns::open(&names.netns).ok();
        let detached = unlinking::delete_detached(
            ns.as_ref().map(|n| n.as_fd()),
            LINK_GROUP,
            &names.host_veth,
            UNLINK_LIMIT,
        );
        match detached {
            Ok(Unlinked::Announced) => return,
            Ok(Unlinked::NoHostLink) => {}
            Err(e) => vlog!("{e:#}"),
        }
        let deleted = util::block_on(async {
            if let Ok(ns) = netns::open(&names.netns) {
                Netlink::in_netns(ns.as_fd())?
                    .delete_group(LINK_GROUP)
                    .await?;
            }
            Netlink::here()?.delete_link_named(&names.host_veth).await
        });
        if let Err(e) = deleted.and_then(|r| r.map(drop)) {
            problems.push(format!("{e:#}"));
        }
    }
}
