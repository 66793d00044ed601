//! Removing every trace of a profile: the one mechanism behind `down`, the
//! rollback of a failed `up`, and the clean-up after an nsvpn that crashed
//! mid-`up`. Everything is found by its deterministic name (and the pid in
//! the state file), so it works with or without state.

use std::time::Duration;

use anyhow::{Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::client;
use crate::names::Names;
use crate::netlink::Netlink;
use crate::netns::{self, Process};
use crate::state::{self, State};
use crate::wireguard::userspace;
use crate::{dnsfiles, util, vlog};

/// Whether anything of the profile exists on this machine.
pub fn any_trace(names: &Names) -> bool {
    State::load(&names.profile).is_some()
        || netns::path(&names.netns).exists()
        || dnsfiles::netns_etc_dir(&names.netns).exists()
        || !client::find_processes(&names.tunnel).is_empty()
        || host_link_exists(&names.host_veth)
        || host_link_exists(&names.tunnel)
}

fn host_link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Ends processes: SIGTERM to all, then SIGKILL to those left after `grace`.
pub fn end_processes(procs: &[Process], grace: Duration) {
    for p in procs {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    }
    let start = std::time::Instant::now();
    while procs.iter().any(|p| util::alive(p.pid)) && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in procs.iter().filter(|p| util::alive(p.pid)) {
        util::terminate(Pid::from_raw(p.pid as i32), Duration::ZERO);
    }
}

/// Removes everything of the profile. Processes still inside the namespace
/// make it refuse, unless `kill`, which ends them first.
pub fn teardown(names: &Names, kill_inside: bool) -> Result<()> {
    let st = State::load(&names.profile);
    let inside = netns::processes_in(&names.netns);
    if !inside.is_empty() {
        if !kill_inside {
            let list: Vec<String> = inside
                .iter()
                .map(|p| format!("  {:>7}  {}", p.pid, p.command))
                .collect();
            bail!(
                "profile {} has processes still running inside:\n{}\nend them, or run `nsvpn down {} --kill`",
                names.profile,
                list.join("\n"),
                names.profile
            );
        }
        vlog!("ending {} process(es) inside {}", inside.len(), names.netns);
        end_processes(&inside, Duration::from_secs(3));
    }

    // The VPN client goes first, while its tunnel still works, so that it
    // can tell the server it is leaving (openvpn's exit notification,
    // openconnect's logout).
    let mut pids: Vec<u32> = st
        .as_ref()
        .and_then(|s| s.pid)
        .filter(|pid| client::is_ours(*pid, &names.tunnel))
        .into_iter()
        .collect();
    for pid in client::find_processes(&names.tunnel) {
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    for pid in pids {
        vlog!("stopping {} (pid {pid})", netns::process_command(pid));
        client::stop(pid, Duration::from_secs(5));
    }
    // A hook the client started may still be applying the tunnel; end it
    // before removing what it writes.
    for pid in client::find_hooks(&names.profile) {
        vlog!("stopping a running hook (pid {pid})");
        client::stop(pid, Duration::from_secs(2));
    }

    let mut problems = Vec::new();
    let links = util::block_on(async {
        let mut problems = Vec::new();
        if let Ok(ns) = netns::open(&names.netns) {
            match Netlink::in_netns(std::os::fd::AsFd::as_fd(&ns)) {
                Ok(inner) => {
                    if let Err(e) = inner.delete_link_named(&names.tunnel).await {
                        problems.push(format!("{e:#}"));
                    }
                }
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        match Netlink::here() {
            Ok(host) => {
                for name in [&names.host_veth, &names.tunnel] {
                    if let Err(e) = host.delete_link_named(name).await {
                        problems.push(format!("{e:#}"));
                    }
                }
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
        problems
    });
    match links {
        Ok(p) => problems.extend(p),
        Err(e) => problems.push(format!("{e:#}")),
    }

    let sock = userspace::socket_path(&names.tunnel);
    if sock.exists()
        && let Err(e) = std::fs::remove_file(&sock)
    {
        problems.push(format!("cannot remove {}: {e}", sock.display()));
    }

    for step in [netns::delete(&names.netns), dnsfiles::remove(&names.netns)] {
        if let Err(e) = step {
            problems.push(format!("{e:#}"));
        }
    }
    if problems.is_empty() {
        state::remove(&names.profile)?;
        Ok(())
    } else {
        bail!(
            "profile {}: some of it could not be removed (its state is kept in {} so that `nsvpn down` can try again):\n  {}",
            names.profile,
            state::profile_dir(&names.profile).display(),
            problems.join("\n  ")
        )
    }
}
