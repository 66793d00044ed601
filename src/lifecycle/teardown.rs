//! Removing every trace of a profile: the one mechanism behind `down`, the
//! rollback of a failed `up`, and the clean-up after an nsvpn that crashed
//! mid-`up`. Everything is found by its deterministic name (and the pid in
//! the state file), so it works with or without state.

use std::time::Duration;

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::parts;
use crate::ending::Ending;
use crate::names::Names;
use crate::netns::Process;
use crate::paths;
use crate::procs::Procs;
use crate::state::{self, State};
use crate::vlog;

/// Whether anything of the profile exists on this machine: its state, or
/// a trace of any of its parts (one look at /proc for all of them).
pub fn any_trace(names: &Names) -> bool {
    State::load(&names.profile).is_some() || parts::any_exists(names, &Procs::read())
}

/// How long processes inside get to end before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// A process [`end_processes`] ended, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub pid: u32,
    pub command: String,
    /// SIGTERM, or SIGHUP for a process that ignores SIGTERM.
    pub signal: Signal,
    /// Still running after the grace time: SIGKILL ended it.
    pub killed: bool,
}

/// The signals `pid` ignores (SIG_IGN), from /proc; none if it is gone.
fn ignored_signals(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// SIGTERM, unless the process ignores it but not SIGHUP: an interactive
/// shell (bash, zsh) ignores SIGTERM and ends on a hang-up, as when its
/// terminal closes, passing the hang-up on to its jobs.
fn polite_signal(pid: u32) -> Signal {
    let ignored = ignored_signals(pid);
    let ignores = |s: Signal| ignored & (1 << (s as u32 - 1)) != 0;
    if ignores(Signal::SIGTERM) && !ignores(Signal::SIGHUP) {
        Signal::SIGHUP
    } else {
        Signal::SIGTERM
    }
}

/// Ends processes: to each the signal that ends it politely (and SIGCONT,
/// since a stopped process acts on nothing else), then SIGKILL to those
/// left after `grace`. Returns what it ended (not those already gone).
pub fn end_processes(procs: &[Process], grace: Duration) -> Vec<Ended> {
    let mut ending = Ending::new();
    let mut sent = Vec::new();
    for p in procs {
        let signal = polite_signal(p.pid);
        if ending.signal(p.pid, signal, grace) {
            sent.push((p, signal));
        }
    }
    let killed_pids = ending.wait();
    sent.into_iter()
        .map(|(p, signal)| {
            let killed = killed_pids.contains(&p.pid);
            Ended {
                pid: p.pid,
                command: p.command.clone(),
                signal,
                killed,
            }
        })
        .collect()
}

/// What `down --kill` says it ended, a line each.
pub fn render_ended(ended: &[Ended], grace: Duration) -> String {
    let mut s = String::new();
    for e in ended {
        let why = if e.killed {
            format!(
                "SIGKILL: still running {} s after {}",
                grace.as_secs(),
                e.signal
            )
        } else if e.signal == Signal::SIGHUP {
            "SIGHUP: it ignores SIGTERM, as an interactive shell does".to_string()
        } else {
            e.signal.to_string()
        };
        s.push_str(&format!(
            "nsvpn: ended pid {} ({}) with {why}\n",
            e.pid, e.command
        ));
    }
    s
}

/// Removes everything of the profile. Processes still inside the namespace
/// make it refuse, unless `kill`, which ends them first (and returns them).
pub fn teardown(names: &Names, kill_inside: bool) -> Result<Vec<Ended>> {
    let st = State::load(&names.profile);
    crate::vtrace!("teardown: state read");
    let procs = Procs::read();
    let inside = parts::user_processes(names, &procs);
    crate::vtrace!("teardown: {} user process(es) inside", inside.len());
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
    }
    let ended = end_processes(&inside, KILL_GRACE);
    // Then the parts, in the reverse of the order `up` made them (see
    // `parts::PARTS` for why).
    let problems = parts::remove_all(names, st.as_ref(), &procs);
    if problems.is_empty() {
        state::remove(&names.profile)?;
        Ok(ended)
    } else {
        bail!(
            "profile {}: some of it could not be removed (its state is kept in {} so that `nsvpn down` can try again):\n  {}",
            names.profile,
            paths::profile_dir(&names.profile).display(),
            problems.join("\n  ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};
    use std::time::Instant;

    /// `sh -c SCRIPT`, once it has become `sleep` (its traps in place).
    /// (SIGTERM and SIGHUP start at their defaults, also when the tests
    /// run under `nohup`: a shell cannot undo a signal ignored on entry.)
    fn sleeper(script: &str) -> (Child, Process) {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        // SAFETY: signal() is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::libc::signal(nix::libc::SIGHUP, nix::libc::SIG_DFL);
                nix::libc::signal(nix::libc::SIGTERM, nix::libc::SIG_DFL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        let t = Instant::now();
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n"
        {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{script} never ran sleep"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let command = crate::netns::process_command(pid);
        (child, Process { pid, command })
    }

    #[test]
    fn each_process_gets_the_signal_that_ends_it_and_stubborn_ones_sigkill() {
        let (mut plain, p1) = sleeper("exec sleep 31");
        let (mut shell_like, p2) = sleeper("trap '' TERM; exec sleep 32");
        let t = Instant::now();
        let ended = end_processes(&[p1.clone(), p2.clone()], Duration::from_secs(10));
        let took = t.elapsed();
        let (mut stubborn, p3) = sleeper("trap '' TERM HUP; exec sleep 33");
        let t3 = Instant::now();
        let forced = end_processes(std::slice::from_ref(&p3), Duration::from_millis(300));
        let took3 = t3.elapsed();
        for c in [&mut plain, &mut shell_like, &mut stubborn] {
            let _ = c.kill();
            let _ = c.wait();
        }

        let ended_with = |p: &Process, signal, killed| Ended {
            pid: p.pid,
            command: p.command.clone(),
            signal,
            killed,
        };
        assert_eq!(
            ended,
            [
                ended_with(&p1, Signal::SIGTERM, false),
                ended_with(&p2, Signal::SIGHUP, false)
            ]
        );
        // Not the grace time: nothing here ignores the signal it got.
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(forced, [ended_with(&p3, Signal::SIGTERM, true)]);
        assert!(took3 >= Duration::from_millis(300), "{took3:?}");
        // Already gone: nothing to end, nothing to say.
        assert_eq!(end_processes(&[p1], Duration::from_secs(1)), []);
    }

    #[test]
    fn down_says_what_it_ended() {
        let e = |pid, command: &str, signal, killed| Ended {
            pid,
            command: command.into(),
            signal,
            killed,
        };
        insta::assert_snapshot!(render_ended(
            &[
                e(805, "/bin/bash", Signal::SIGHUP, false),
                e(812, "sleep 300", Signal::SIGTERM, false),
                e(901, "stubborn --daemon", Signal::SIGTERM, true),
            ],
            KILL_GRACE
        ));
        assert_eq!(render_ended(&[], KILL_GRACE), "");
    }
}
