//! `nsvpn exec <profile> [--] <cmd>...` and `nsvpn shell <profile>`: run a
//! command inside the profile's namespace as the invoking user. nsvpn
//! replaces itself with the command; the exit status is the command's, or
//! 125/126/127 for nsvpn's own failures.

use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Result, anyhow};

use crate::caller::{Action, Caller, Mode};
use crate::exec::{self, ExecFailure, Plan, RealSys};
use crate::lifecycle::{self as up, Entering, open_entering};
use crate::names::{self, Names};
use crate::profile::Profile;
use crate::session::{desktop, single};
use crate::shellrc;
use crate::signals;
use crate::user::Target;

/// What to run: a command line, or the user's login shell.
pub enum What {
    Command(Vec<OsString>),
    Shell,
}

/// Never returns on success; the returned value is the exit status.
pub fn run(caller: &Caller, dir: &Path, name: &str, what: What, opts: &up::Options) -> i32 {
    let failure = match prepare_and_exec(caller, dir, name, what, opts) {
        Ok(f) => f,
        Err(e) => ExecFailure::Setup(e),
    };
    eprintln!("{}", failure.message());
    failure.exit_code()
}

fn argv_for(what: What, target: &Target) -> Result<Vec<CString>> {
    match what {
        What::Command(args) => args
            .iter()
            .map(|a| {
                CString::new(a.as_bytes()).map_err(|_| anyhow!("an argument contains a NUL byte"))
            })
            .collect(),
        What::Shell => {
            let shell = if target.shell.as_os_str().is_empty() {
                Path::new("/bin/sh")
            } else {
                target.shell.as_path()
            };
            Ok(vec![CString::new(shell.as_os_str().as_bytes())?])
        }
    }
}

fn single_instance_warning(
    argv: &[CString],
    target: &Target,
    profile: &str,
    ns: std::os::fd::BorrowedFd<'_>,
) {
    let words: Vec<&str> = argv.iter().filter_map(|a| a.to_str().ok()).collect();
    let Some(program) = single::lookup(&words, || std::fs::read_to_string(single::LIST_FILE).ok())
    else {
        return;
    };
    let Ok(st) = nix::sys::stat::fstat(ns) else {
        return;
    };
    let inside = (st.st_dev, st.st_ino);
    if let Some(pid) = single::running_outside(&program, target.uid.as_raw(), inside) {
        eprintln!(
            "nsvpn: warning: {}",
            single::warning(&program, pid, &target.name, profile)
        );
    }
}

fn prepare_and_exec(
    caller: &Caller,
    dir: &Path,
    name: &str,
    what: What,
    opts: &up::Options,
) -> Result<ExecFailure> {
    names::validate_profile_name(name)?;
    // 1. The user was resolved first, by Caller::detect (NSS may need the
    //    host's sockets). Without sudo, the profile's [access] decides.
    let target = caller.user.clone();
    if caller.mode == Mode::FileCaps {
        caller.check_access(&Profile::load(dir, name)?, Action::Exec)?;
    }
    let is_shell = matches!(what, What::Shell);
    let argv = argv_for(what, &target)?;
    let names = Names::for_profile(name);
    // The command's environment comes from the caller's, read now: bringing
    // the profile up below may clear nsvpn's own. A user's command gets the
    // desktop's sockets that sudo left out, and a word on those that do not
    // cross a network namespace.
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    if !target.is_root() {
        let d = desktop::complete(&vars, target.uid.as_raw(), &desktop::RealFs);
        for w in &d.warnings {
            eprintln!("nsvpn: warning: {w}");
        }
        vars.extend(d.added);
    }
    let env = exec::build_env(vars.into_iter(), &target, name, is_shell);
    // Open the namespace once: it both tells that the profile is up and is
    // what setns needs.
    let who = Entering {
        word: if is_shell { "shell" } else { "exec" },
        noun: "command",
        while_reconnecting: "the command runs, but reaches the network only once the VPN is back",
    };
    let ns = open_entering(caller, dir, &names, &who, opts)?;
    // A single-instance program would hand the request to an instance
    // running outside (only a program on the list makes nsvpn read /proc).
    if !is_shell {
        single_instance_warning(&argv, &target, name, ns.as_fd());
    }
    // Only the shell's path does this work (a command's exec stays as is).
    let prompt = is_shell.then(|| shellrc::prompt(&target.shell, name, &argv, &env));
    let plan = Plan {
        netns: &names.netns,
        ns: ns.as_fd(),
        etc: exec::EtcFiles::of(name, &names.netns),
        hidden: exec::hidden_dirs(),
        env,
        target,
        argv,
        prompt: prompt.flatten(),
        // Only an automatic `up` above watched (and so blocked) the stop
        // signals; exec of a profile that is up pays nothing for them.
        signal_mask: signals::watched().map(signals::Watch::caller_mask),
    };
    Ok(exec::run(&mut RealSys, &plan))
}
