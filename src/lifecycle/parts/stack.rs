//! A split profile's user-mode network stack: `slirp4netns`, attached to
//! the namespace by a tap device. What the namespace sends it leaves as
//! ordinary sockets of that process on the host, so the host's routes,
//! `ip_forward`, firewall and resolv.conf stay as they are, and nothing
//! listens on the host for it. It gets the routes of `split.rs`: the
//! default (with `internet`, beneath the kill switch) and the `direct`
//! prefixes' table.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::{Check, Look, Making, Part, helper};
use crate::backend::client::Within;
use crate::backend::wireguard::connect::link_index;
use crate::ending::Ending;
use crate::ipnet::IpNet;
use crate::names::Names;
use crate::netlink::{Netlink, Route};
use crate::procs::Procs;
use crate::state::State;
use crate::{paths, signals, split, vlog};

pub const PROGRAM: &str = "slirp4netns";

pub struct Stack;

/// What tells the profile's slirp4netns from others: its namespace's path.
fn marker(names: &Names) -> String {
    paths::netns(&names.netns).display().to_string()
}

impl Part for Stack {
    fn name(&self) -> &'static str {
        "stack"
    }

    fn wanted(&self, st: &State) -> bool {
        st.overrides.split.is_some()
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let t0 = Instant::now();
        let names = cx.names;
        let Some(sp) = cx.st.overrides.split.clone() else {
            return Ok(false);
        };
        let ns = cx
            .ns
            .as_ref()
            .ok_or_else(|| anyhow!("the stack needs the namespace, which is not made"))?;
        let (ready_r, ready_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
        // As root, with its sandbox (its own mount namespace, no new
        // privileges) and seccomp: it keeps only CAP_NET_BIND_SERVICE once
        // attached. No host loopback, no IPv6, no port published.
        let args: Vec<std::ffi::OsString> = [
            "--netns-type=path".to_string(),
            "--disable-host-loopback".into(),
            format!("--cidr={}", split::STACK_CIDR),
            "--ready-fd=3".into(),
            "--enable-sandbox".into(),
            "--enable-seccomp".into(),
            paths::netns(&names.netns).display().to_string(),
            split::STACK_DEVICE.into(),
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        // In a mount namespace whose mounts are all private: its sandbox's
        // pivot_root fails under a shared mount (systemd's, a tmpfs /tmp).
        let pid = helper::start(
            names,
            PROGRAM,
            &args,
            Within::PrivateMounts,
            Some(ready_w.as_fd()),
        )?;
        drop(ready_w);
        wait_ready(&ready_r, Duration::from_secs(5)).map_err(|e| {
            anyhow!(
                "{PROGRAM} (pid {pid}) did not attach to {}: {e:#}\nthe end of its log:\n{}",
                names.netns,
                helper::log_tail(names, PROGRAM)
            )
        })?;
        signals::block_on(async {
            let inner = Netlink::in_netns(ns.as_fd())?;
            let tap = link_index(&inner, split::STACK_DEVICE).await?;
            let guest = IpNet::new(split::STACK_GUEST.into(), split::STACK_PREFIX)
                .map_err(|e| anyhow!(e))?;
            inner.add_address(tap, guest).await?;
            inner.set_up(tap, None).await?;
            let gw = split::STACK_GATEWAY.into();
            let default: IpNet = "0.0.0.0/0".parse().map_err(|e: String| anyhow!(e))?;
            if sp.internet {
                let mut r = Route::via_gateway(default, gw, tap);
                r.metric = Some(split::STACK_METRIC);
                inner.add_route(&r).await?;
            }
            if !sp.direct.is_empty() {
                inner
                    .add_route(&Route::via_gateway(default, gw, tap).in_table(split::DIRECT_TABLE))
                    .await?;
                for d in &sp.direct {
                    inner
                        .add_rule_to(*d, split::DIRECT_TABLE, split::DIRECT_RULE_PRIORITY)
                        .await?;
                }
            }
            anyhow::Ok(())
        })?;
        cx.own += t0.elapsed();
        vlog!("{PROGRAM} attached (pid {pid}, {:?})", t0.elapsed());
        Ok(true)
    }

    /// Without its stack a split profile still reaches its VPN (and stays
    /// sealed); only the internet and the direct prefixes are out of reach.
    fn check(&self, look: &mut Look<'_>) -> Check {
        if !look.thorough
            || helper::running(&look.st.names, PROGRAM, &marker(&look.st.names)).is_some()
        {
            return Check::Fine;
        }
        Check::Degraded(format!(
            "its user-mode network stack ({PROGRAM}) is not running: the internet and its direct \
             prefixes are out of reach (the VPN still works); `nsvpn down {p}` then `nsvpn up {p}` \
             starts it again",
            p = look.profile
        ))
    }

    fn show(&self, st: &State) -> String {
        match helper::running(&st.names, PROGRAM, &marker(&st.names)) {
            Some(pid) => format!("{PROGRAM} pid {pid}, {}", split::STACK_DEVICE),
            None => format!("{PROGRAM}, not running"),
        }
    }

    fn processes(&self, names: &Names, procs: &Procs) -> Vec<u32> {
        helper::all(procs, PROGRAM, &marker(names))
    }

    fn exists(&self, names: &Names, procs: &Procs) -> bool {
        !helper::all(procs, PROGRAM, &marker(names)).is_empty()
    }

    // It must be gone before the namespace: its tap keeps the namespace
    // alive (unnamed) for as long as it runs.
    fn stop(&self, names: &Names, _: Option<&State>, procs: &Procs, ending: &mut Ending) {
        helper::stop_all(procs, PROGRAM, &marker(names), ending);
    }

    fn remove(&self, names: &Names, _: Option<&State>, _: &mut Vec<String>) {
        helper::forget(names, PROGRAM);
    }
}

/// Waits until slirp4netns writes "1" on its ready descriptor.
fn wait_ready(fd: &std::os::fd::OwnedFd, timeout: Duration) -> Result<()> {
    let mut pfd = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)).context("poll")?;
    if n == 0 {
        bail!("no readiness after {:.0} s", timeout.as_secs_f64());
    }
    let mut buf = [0u8; 1];
    let dup = nix::unistd::dup(fd).context("dup")?;
    let mut f = std::fs::File::from(dup);
    match f.read(&mut buf) {
        Ok(1) if buf[0] == b'1' => Ok(()),
        Ok(_) => bail!("it exited before it was ready"),
        Err(e) => Err(e).context("cannot read its readiness"),
    }
}
