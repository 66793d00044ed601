//! The veth pair that links the namespace to the host only: the host's end
//! with the profile's fixed address, the other end moved in and addressed.

use std::os::fd::AsFd;
use std::time::Instant;

use anyhow::{Result, anyhow};

use super::{Check, Look, Making, Part};
use crate::backend::wireguard::connect::link_index;
use crate::ipnet::IpNet;
use crate::names::{LINK_GROUP, Names};
use crate::netlink::Netlink;
use crate::procs::Procs;
use crate::state::State;
use crate::{netns, signals, util, vlog};

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
    // deleting the group removes them all in one batch, with one wait for
    // the kernel's grace periods (each link deleted alone waits its own).
    // The host's end by name after that: a pair made before links had a
    // group, or whose namespace is gone.
    fn remove(&self, names: &Names, _: Option<&State>, problems: &mut Vec<String>) {
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
