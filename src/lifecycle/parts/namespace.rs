//! The namespace, `/run/netns/nsvpn-<profile>`, with its loopback up, ping
//! allowed for every group and IPv6 off for the links that come into it;
//! and its files in `/etc/netns/nsvpn-<profile>/`, which the tunnel writes.

use std::os::fd::AsFd;
use std::time::Instant;

use anyhow::Result;

use super::{Check, Look, Making, Part};
use crate::backend::wireguard::connect::link_index;
use crate::names::Names;
use crate::netlink::Netlink;
use crate::procs::Procs;
use crate::state::State;
use crate::{dnsfiles, netns, paths, signals, vlog};

pub struct Namespace;

impl Part for Namespace {
    fn name(&self) -> &'static str {
        "namespace"
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let t0 = Instant::now();
        let name = &cx.names.netns;
        netns::create(name)?;
        let ns = netns::open(name)?;
        signals::block_on(async {
            let inner = Netlink::in_netns(ns.as_fd())?;
            let lo = link_index(&inner, "lo").await?;
            inner.set_up(lo, None).await
        })?;
        netns::set_net_sysctl(ns.as_fd(), "ipv4/ping_group_range", "0 2147483647")?;
        // IPv6 exists inside only if the VPN provides it: links made or
        // moved here from now on (the veth end, the tunnel) start with it
        // off, so no link-local address or router solicitation ever leaves
        // by the veth.
        netns::set_ipv6_disabled(Some(ns.as_fd()), "default", true)?;
        cx.ns = Some(ns);
        cx.own += t0.elapsed();
        vlog!("namespace {name} created ({:?})", t0.elapsed());
        Ok(true)
    }

    fn check(&self, look: &mut Look<'_>) -> Check {
        match look.probe.open_netns(&look.st.names.netns) {
            Ok(ns) => {
                look.ns = Some(ns);
                Check::Fine
            }
            Err(e) => Check::Broken(format!("{e:#}")),
        }
    }

    fn show(&self, st: &State) -> String {
        st.names.netns.clone()
    }

    fn exists(&self, names: &Names, _: &Procs) -> bool {
        paths::netns(&names.netns).exists() || paths::netns_etc(&names.netns).exists()
    }

    // The namespace goes once nothing is left in it; its files in /etc/netns
    // after it, since `exec` binds them over /etc only while it exists.
    fn remove(&self, names: &Names, _: Option<&State>, problems: &mut Vec<String>) {
        for step in [netns::delete(&names.netns), dnsfiles::remove(&names.netns)] {
            if let Err(e) = step {
                problems.push(format!("{e:#}"));
            }
        }
    }
}
