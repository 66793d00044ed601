//! nsvpn's entry point: parse, dispatch, print errors.
//!
//! The C runtime calls `main` directly (`no_main`): std's own start-up
//! reads `/proc/self/maps` and sets up a stack-overflow handler, about
//! 25 us of every `nsvpn exec` (README "Performance"). What of it nsvpn
//! relies on is done in [`nsvpn::util::start_up`].
#![cfg_attr(not(test), no_main)]

use std::time::Duration;

use clap::Parser;
use nsvpn::caller::Caller;
use nsvpn::cli::{Cli, Command};
use nsvpn::commands::{self, exec::What, up};
use nsvpn::exec::EXIT_NSVPN_ERROR;
use nsvpn::lifecycle;
use nsvpn::signals::{self, Interrupted};

/// Called by the C runtime with the arguments std reads itself.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    nsvpn::util::start_up();
    // exit flushes std's output buffers, as returning from std's main does.
    std::process::exit(i32::from(run()))
}

/// The exit status.
#[cfg_attr(test, allow(dead_code))]
fn run() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return 0;
            }
            // Like env and nsenter, a usage error of exec/shell is status 125.
            let sub = std::env::args().skip(1).find(|a| !a.starts_with('-'));
            let code = if matches!(sub.as_deref(), Some("exec" | "shell")) {
                EXIT_NSVPN_ERROR
            } else {
                2
            };
            return code as u8;
        }
    };
    nsvpn::util::set_verbosity(cli.verbose);
    // The hook checks its own caller (root only) and reads no profile.
    if let Command::Hook { kind, profile, .. } = &cli.command {
        return commands::hook::run(kind, profile) as u8;
    }
    // Run by `up`, as root, with the profile's state to read.
    if let Command::KeptForwards { profile } = &cli.command {
        return commands::kept_forwards::run(profile);
    }
    if let Command::IdleWatch { profile } = &cli.command {
        return commands::idle_watch::run(profile);
    }
    if let Command::IpsecSupervise { profile } = &cli.command {
        return commands::ipsec_supervise::run(profile);
    }
    // Completions need no privilege and read no profile.
    if let Command::Completions { shell } = cli.command {
        return match commands::completions::run(shell) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("nsvpn: error: {e:#}");
                1
            }
        };
    }
    // Printed for `... | sudo tee` and `podman run $(...)`, so run as the
    // user: they need no privilege (with one, [access] still applies).
    if matches!(
        cli.command,
        Command::Unit { .. } | Command::PodmanArgs { .. }
    ) {
        let caller = Caller::detect().ok();
        let dir = match &caller {
            Some(c) => c.profile_dir(cli.profiles.as_deref()),
            None => nsvpn::profile::profile_dir(cli.profiles.as_deref()),
        };
        let result = match &cli.command {
            Command::Unit { profile, service } => {
                commands::unit::run(caller.as_ref(), &dir, profile, service)
            }
            Command::PodmanArgs { profile } => {
                commands::podman_args::run(caller.as_ref(), &dir, profile)
            }
            _ => unreachable!("matched above"),
        };
        return match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("nsvpn: error: {e:#}");
                1
            }
        };
    }
    let is_exec = matches!(cli.command, Command::Exec { .. } | Command::Shell { .. });
    let caller = match Caller::detect() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nsvpn: error: {e:#}");
            return if is_exec { EXIT_NSVPN_ERROR as u8 } else { 1 };
        }
    };
    nsvpn::trust::require_root_owned(caller.for_other_user());
    let dir = caller.profile_dir(cli.profiles.as_deref());
    let default_up = lifecycle::Options::default();
    let result = match cli.command {
        Command::Up { profile, timeout } => up::run(
            &caller,
            &dir,
            &profile,
            &lifecycle::Options {
                timeout: Duration::from_secs(timeout),
            },
        ),
        Command::Down { profile, kill } => commands::down::run(&caller, &dir, &profile, kill),
        Command::Exec { profile, command } => {
            return commands::exec::run(&caller, &dir, &profile, What::Command(command), &default_up)
                as u8;
        }
        Command::Shell { profile } => {
            return commands::exec::run(&caller, &dir, &profile, What::Shell, &default_up) as u8;
        }
        Command::Status { profile, json } => {
            commands::status::run(&caller, &dir, profile.as_deref(), json)
        }
        Command::List => commands::list::run(&caller, &dir),

        Command::Forward { profile, specs } => {
            return commands::forward::run(&caller, &dir, &profile, &specs);
        }
        Command::Doctor {
            profile,
            target,
            json,
        } => {
            return match commands::doctor::run(
                &caller,
                &dir,
                profile.as_deref(),
                target.as_deref(),
                json,
            ) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("nsvpn: error: {e:#}");
                    1
                }
            };
        }
        Command::Hook { .. }
        | Command::KeptForwards { .. }
        | Command::IdleWatch { .. }
        | Command::IpsecSupervise { .. }
        | Command::Completions { .. }
        | Command::Unit { .. }
        | Command::PodmanArgs { .. } => {
            unreachable!("handled above")
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsvpn: error: {e:#}");
            // Stopped by a signal: 128 + its number, as a shell reports it.
            signals::interruption(&e).map_or(1, Interrupted::exit_code)
        }
    }
}
