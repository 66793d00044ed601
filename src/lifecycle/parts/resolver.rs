//! A split profile's resolver: `dnsmasq` on the namespace's loopback. The
//! split domains go to the VPN's servers and never anywhere else; every
//! other name to the host's resolver, through the stack (`split.rs` writes
//! its servers, and has it re-read them when the VPN reconnects). It reads
//! no other file, and runs as nobody once its socket is bound.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::{Check, Look, Making, Part, helper};
use crate::backend::client::Within;
use crate::ending::Ending;
use crate::names::Names;
use crate::procs::Procs;
use crate::state::State;
use crate::{netns, paths, vlog};

pub const PROGRAM: &str = "dnsmasq";

pub struct Resolver;

/// What tells the profile's dnsmasq from others: its servers file.
fn marker(names: &Names) -> String {
    paths::resolver_servers(&names.profile)
        .display()
        .to_string()
}

impl Part for Resolver {
    fn name(&self) -> &'static str {
        "resolver"
    }

    fn wanted(&self, st: &State) -> bool {
        st.overrides.split.is_some()
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let t0 = Instant::now();
        let names = cx.names;
        // The tunnel wrote the servers only if there are domains to split.
        if !paths::resolver_servers(&names.profile).exists() {
            return Ok(false);
        }
        let ns = cx
            .ns
            .as_ref()
            .ok_or_else(|| anyhow!("the resolver needs the namespace, which is not made"))?;
        let args: Vec<std::ffi::OsString> = [
            "--keep-in-foreground".to_string(),
            "--conf-file=/dev/null".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--no-poll".into(),
            "--bind-interfaces".into(),
            "--listen-address=127.0.0.1".into(),
            "--pid-file=".into(),
            "--user=nobody".into(),
            "--group=nogroup".into(),
            "--log-facility=-".into(),
            format!("--servers-file={}", marker(names)),
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        let pid = helper::start(names, PROGRAM, &args, Within::Netns(ns.as_fd()), None)?;
        // Ready once it accepts on the namespace's 127.0.0.1:53.
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 53));
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let up = netns::run_in(ns.as_fd(), || {
                Ok(TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok())
            })?;
            if up {
                break;
            }
            if Instant::now() > deadline || !crate::util::alive(pid) {
                bail!(
                    "{PROGRAM} (pid {pid}) did not start answering on 127.0.0.1:53 inside {}\nthe end of its log:\n{}",
                    names.netns,
                    helper::log_tail(names, PROGRAM)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cx.own += t0.elapsed();
        vlog!("{PROGRAM} answers (pid {pid}, {:?})", t0.elapsed());
        Ok(true)
    }

    fn check(&self, look: &mut Look<'_>) -> Check {
        let names = &look.st.names;
        if !look.thorough || helper::running(names, PROGRAM, &marker(names)).is_some() {
            return Check::Fine;
        }
        Check::Degraded(format!(
            "its resolver ({PROGRAM}) is not running: names do not resolve inside (addresses still \
             work); `nsvpn down {p}` then `nsvpn up {p}` starts it again",
            p = look.profile
        ))
    }

    fn show(&self, st: &State) -> String {
        match helper::running(&st.names, PROGRAM, &marker(&st.names)) {
            Some(pid) => format!("{PROGRAM} pid {pid}, 127.0.0.1"),
            None => format!("{PROGRAM}, not running"),
        }
    }

    fn processes(&self, names: &Names, procs: &Procs) -> Vec<u32> {
        helper::all(procs, PROGRAM, &marker(names))
    }

    fn exists(&self, names: &Names, procs: &Procs) -> bool {
        !helper::all(procs, PROGRAM, &marker(names)).is_empty()
    }

    fn stop(&self, names: &Names, _: Option<&State>, procs: &Procs, ending: &mut Ending) {
        helper::stop_all(procs, PROGRAM, &marker(names), ending);
    }

    fn remove(&self, names: &Names, _: Option<&State>, _: &mut Vec<String>) {
        helper::forget(names, PROGRAM);
        let _ = std::fs::remove_file(paths::resolver_servers(&names.profile));
    }
}
