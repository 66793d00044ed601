//! The tunnel: the VPN's device in the namespace, addressed and routed, and
//! the process that carries it (openvpn, openconnect, wireguard-go; kernel
//! WireGuard has none). One part, not two: the client makes the device and
//! the device dies with the client, for every kind but kernel WireGuard, so
//! neither can be made, checked or removed without the other.

use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{Result, anyhow};

use nix::sys::signal::Signal;

use super::{Check, Look, Making, Part};
use crate::backend::{self, client};
use crate::ending::Ending;
use crate::names::Names;
use crate::netlink::Netlink;
use crate::procs::Procs;
use crate::state::State;
use crate::util::{self, now_unix};
use crate::{netns, paths, vlog};

pub struct Tunnel;

/// How long a running hook gets to end before SIGKILL.
const HOOK_GRACE: Duration = Duration::from_secs(2);

impl Part for Tunnel {
    fn name(&self) -> &'static str {
        "tunnel"
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let ns = cx
            .ns
            .as_ref()
            .ok_or_else(|| anyhow!("the tunnel needs the namespace, which is not made"))?;
        let c = backend::connect(cx.profile, cx.names, cx.prepared, ns.as_fd(), cx.st)?;
        cx.own += c.own;
        cx.waited += c.waited;
        cx.what = c.what;
        Ok(true)
    }

    fn check(&self, look: &mut Look<'_>) -> Check {
        let st = look.st;
        let profile = look.profile;
        let program = backend::program(st);
        if let Some(pid) = st.pid
            && !look.probe.alive(pid)
        {
            // Between two clients: an IPsec profile's supervisor replaces
            // charon on a reconnect.
            if let Ok(Some(r)) = look.probe.reconnecting(profile, st) {
                let check = Check::Reconnecting(format!(
                    "{program} {}; the namespace stays sealed meanwhile",
                    r.describe(now_unix())
                ));
                look.reconnect = Some(r);
                return check;
            }
            return Check::Broken(format!(
                "its VPN client ({program} pid {pid}) has exited: it is not running, so the tunnel \
                 is gone and the namespace stays sealed until `nsvpn down {profile}`"
            ));
        }
        // A client that runs but has lost its tunnel for good (an IPsec
        // profile's charon without its SA).
        if let Some(why) = backend::lost(profile, st) {
            return Check::Broken(format!(
                "{why}; the namespace stays sealed until `nsvpn down {profile}`"
            ));
        }
        let Some(ns) = look.ns.as_ref() else {
            return Check::Broken(format!("its namespace {} is gone", st.names.netns));
        };
        // Every tunnel is a link in the namespace (for kernel WireGuard it
        // is all there is to watch). A client's link may be gone only while
        // it reconnects.
        let present = match look.probe.has_link(ns.as_fd(), &st.names.tunnel) {
            Ok(p) => p,
            Err(e) => return Check::Broken(format!("{e:#}")),
        };
        let reconnect = if look.thorough || !present {
            look.probe.reconnecting(profile, st)
        } else {
            Ok(None)
        };
        let check = match &reconnect {
            Ok(Some(r)) => Check::Reconnecting(format!(
                "{program} {}; the namespace stays sealed meanwhile",
                r.describe(now_unix())
            )),
            _ if present => Check::Fine,
            Err(e) => Check::Reconnecting(format!(
                "its tunnel device {} is gone, and nsvpn cannot ask {program} whether it is \
                 reconnecting ({e}); `sudo nsvpn status {profile}` tells",
                st.names.tunnel
            )),
            Ok(None) => {
                let client = if st.kind.reconnects() {
                    format!(" and {program} is not reconnecting")
                } else {
                    String::new()
                };
                Check::Broken(format!(
                    "its tunnel device {} is gone from the namespace{client}; the namespace stays \
                     sealed until `nsvpn down {profile}`",
                    st.names.tunnel
                ))
            }
        };
        look.reconnect = reconnect.ok().flatten();
        check
    }

    fn show(&self, st: &State) -> String {
        match st.pid {
            Some(pid) => format!("{}, {} pid {pid}", st.names.tunnel, backend::program(st)),
            None => st.names.tunnel.clone(),
        }
    }

    fn exists(&self, names: &Names, procs: &Procs) -> bool {
        !client::find_processes(procs, &names.tunnel).is_empty()
            || netns::host_has_link(&names.tunnel)
    }

    fn stop(&self, names: &Names, st: Option<&State>, procs: &Procs, ending: &mut Ending) {
        // The VPN client is asked while its tunnel still works, so that it
        // can tell the server it is leaving (openvpn's exit notification,
        // openconnect's logout; charon is asked over VICI to delete its
        // SAs), through the host's network.
        backend::before_stop(&names.profile);
        let mut pids: Vec<u32> = st
            .and_then(|s| s.pid)
            .filter(|pid| client::is_ours(*pid, &names.tunnel))
            .into_iter()
            .collect();
        for pid in client::find_processes(procs, &names.tunnel) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        for pid in pids {
            vlog!("stopping {} (pid {pid})", netns::process_command(pid));
            backend::end_client(&names.profile, st, pid, ending);
        }
        // A hook the client started may still be applying the tunnel: it
        // ends with the client, before what it writes is removed.
        for pid in client::find_hooks(procs, &names.profile) {
            vlog!("stopping a running hook (pid {pid})");
            ending.signal(pid, Signal::SIGTERM, HOOK_GRACE);
        }
    }

    fn remove(&self, names: &Names, st: Option<&State>, problems: &mut Vec<String>) {
        // Kernel WireGuard's device outlives any process: delete it, inside
        // (or still on the host, if `up` stopped before moving it). Usually
        // it went already, with the veth pair's link group, and a client's
        // tun with its client: one ioctl each says so, with no netlink.
        let ns = netns::open(&names.netns).ok();
        let inside = ns
            .as_ref()
            .is_some_and(|ns| netns::has_link(ns.as_fd(), &names.tunnel).unwrap_or(true));
        let on_host = netns::host_has_link(&names.tunnel);
        if inside || on_host {
            let deleted = util::block_on(async {
                if let Some(ns) = ns.as_ref().filter(|_| inside) {
                    Netlink::in_netns(ns.as_fd())?
                        .delete_link_named(&names.tunnel)
                        .await?;
                }
                if on_host {
                    Netlink::here()?.delete_link_named(&names.tunnel).await?;
                }
                anyhow::Ok(())
            });
            if let Err(e) = deleted.and_then(|r| r) {
                problems.push(format!("{e:#}"));
            }
        }
        // What outlives a client (a killed charon's mark-only routing rule).
        backend::after_stop(&names.profile, st, problems);
        let sock = paths::wireguard_socket(&names.tunnel);
        if sock.exists()
            && let Err(e) = std::fs::remove_file(&sock)
        {
            problems.push(format!("cannot remove {}: {e}", sock.display()));
        }
    }
}
