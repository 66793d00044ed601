//! nsvpn's entry point: parse, dispatch, print errors.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nsvpn::caller::Caller;
use nsvpn::cli::{Cli, Command};
use nsvpn::commands::{self, exec::What, up};
use nsvpn::exec::EXIT_NSVPN_ERROR;
use nsvpn::lifecycle;
use nsvpn::signals::{self, Interrupted};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return ExitCode::SUCCESS;
            }
            // Like env and nsenter, a usage error of exec/shell is status 125.
            let sub = std::env::args().skip(1).find(|a| !a.starts_with('-'));
            let code = if matches!(sub.as_deref(), Some("exec" | "shell")) {
                EXIT_NSVPN_ERROR
            } else {
                2
            };
            return ExitCode::from(code as u8);
        }
    };
    nsvpn::util::set_verbosity(cli.verbose);
    // The hook checks its own caller (root only) and reads no profile.
    if let Command::Hook { kind, profile, .. } = &cli.command {
        return ExitCode::from(commands::hook::run(kind, profile) as u8);
    }
    // Run by `up`, as root, with the profile's state to read.
    if let Command::KeptForwards { profile } = &cli.command {
        return ExitCode::from(commands::kept_forwards::run(profile));
    }
    if let Command::IdleWatch { profile } = &cli.command {
        return ExitCode::from(commands::idle_watch::run(profile));
    }
    if let Command::IpsecSupervise { profile } = &cli.command {
        return ExitCode::from(commands::ipsec_supervise::run(profile));
    }
    // Completions need no privilege and read no profile.
    if let Command::Completions { shell } = cli.command {
        return match commands::completions::run(shell) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nsvpn: error: {e:#}");
                ExitCode::from(1)
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
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nsvpn: error: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let is_exec = matches!(cli.command, Command::Exec { .. } | Command::Shell { .. });
    let caller = match Caller::detect() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nsvpn: error: {e:#}");
            return ExitCode::from(if is_exec { EXIT_NSVPN_ERROR as u8 } else { 1 });
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
            return ExitCode::from(commands::exec::run(
                &caller,
                &dir,
                &profile,
                What::Command(command),
                &default_up,
            ) as u8);
        }
        Command::Shell { profile } => {
            return ExitCode::from(commands::exec::run(
                &caller,
                &dir,
                &profile,
                What::Shell,
                &default_up,
            ) as u8);
        }
        Command::Status { profile, json } => {
            commands::status::run(&caller, &dir, profile.as_deref(), json)
        }
        Command::List => commands::list::run(&caller, &dir),

        Command::Forward { profile, specs } => {
            return ExitCode::from(commands::forward::run(&caller, &dir, &profile, &specs));
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
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("nsvpn: error: {e:#}");
                    ExitCode::from(1)
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nsvpn: error: {e:#}");
            // Stopped by a signal: 128 + its number, as a shell reports it.
            ExitCode::from(signals::interruption(&e).map_or(1, Interrupted::exit_code))
        }
    }
}
