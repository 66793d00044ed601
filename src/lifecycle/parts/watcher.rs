//! A profile's idle watcher (`idle_timeout`): one `nsvpn idle-watch
//! <profile>` process, in the host's namespaces, as root (it takes the
//! profile down), for as long as the profile is up. It is a part like the
//! others: `up` makes it last and waits for its word on descriptor 3,
//! `status` shows it, its health is checked (degraded when it is not
//! running: the profile then merely stays up), and `down` ends it first
//! (SIGTERM, which it reads between its looks).
//!
//! Every [`idle::interval`] it looks: the datagrams queued on its socket
//! (`exec`, `forward`, the kept forwarder), then the processes inside.
//! Once nothing has used the profile for `idle_timeout`, it takes the
//! profile's lock without waiting (an `up` or `down` under way wins: it
//! looks again later), marks the profile going down, looks once more, and
//! removes the profile with the very teardown `nsvpn down` runs, in this
//! process (its own part's removal passes over this process; see
//! `idle.rs` for why `exec` cannot slip in meanwhile). What it does goes to
//! its log, `/run/nsvpn/<profile>/idle-watch.log` (gone with the profile),
//! and to syslog (the journal, under systemd), so that why the profile went
//! down stays on record. Under `nsvpn@<profile>.service` it then asks
//! systemd to stop the unit, which finds the profile down already: the
//! unit ends inactive, not failed, and `systemctl start` brings it up again.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use nix::sys::signal::Signal;

use super::{Check, HELPER_GRACE, Look, Making, Part, helper};
use crate::ending::Ending as Stopping;
use crate::idle::{self, Idle, Record, Use};
use crate::lifecycle::teardown;
use crate::names::{self, Names};
use crate::procs::Procs;
use crate::state::{Lock, State};
use crate::util::{self, now_ms};
use crate::{paths, signals, vlog};

/// The hidden command that watches.
pub const COMMAND: &str = "idle-watch";
/// Its pid and log files' name in the profile's run directory.
const FILES: &str = "idle-watch";
/// How long `up` waits for its word (it only reads the state and binds a
/// socket).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Watcher;

fn find(names: &Names, procs: &Procs) -> Vec<u32> {
    helper::own_processes(procs, COMMAND, &names.profile)
}

/// The running watcher, by its pid file.
fn running(names: &Names) -> Option<u32> {
    util::read_pid(&paths::pid_file(&names.profile, FILES))
        .filter(|pid| helper::is_own(*pid, COMMAND, &names.profile))
}

fn timeout_of(st: &State) -> Option<Duration> {
    st.overrides.idle_timeout.map(Duration::from_secs)
}

impl Part for Watcher {
    fn name(&self) -> &'static str {
        "watcher"
    }

    fn wanted(&self, st: &State) -> bool {
        st.overrides.idle_timeout.is_some()
    }

    fn create(&self, cx: &mut Making<'_>) -> Result<bool> {
        let t0 = Instant::now();
        let names = cx.names;
        let pid = helper::start_own(
            &names.profile,
            COMMAND,
            FILES,
            None,
            READY_TIMEOUT,
            "the profile's idle watcher (idle_timeout)",
        )?;
        cx.own += t0.elapsed();
        vlog!("idle watcher runs (pid {pid}, {:?})", t0.elapsed());
        Ok(true)
    }

    /// Without it the profile still works; it only stays up when idle.
    fn check(&self, look: &mut Look<'_>) -> Check {
        if !look.thorough || running(&look.st.names).is_some() {
            return Check::Fine;
        }
        Check::Degraded(format!(
            "its idle watcher is not running: it will not go down by itself after idle_timeout \
             {}; the end of {} says why; `nsvpn down {p}` then `nsvpn up {p}` starts it again",
            idle::compact(look.st.overrides.idle_timeout.unwrap_or(0)),
            paths::log_file(look.profile, FILES).display(),
            p = look.profile
        ))
    }

    fn show(&self, st: &State) -> String {
        match running(&st.names) {
            Some(pid) => format!("nsvpn pid {pid}"),
            None => "nsvpn, not running".into(),
        }
    }

    fn exists(&self, names: &Names, procs: &Procs) -> bool {
        !find(names, procs).is_empty()
    }

    // First to be asked, so that it never looks at a profile half removed.
    // When the watcher itself runs the teardown, the snapshot of /proc
    // passes over it (it never lists the process that read it).
    fn stop(&self, names: &Names, _: Option<&State>, procs: &Procs, ending: &mut Stopping) {
        for pid in find(names, procs) {
            ending.signal(pid, Signal::SIGTERM, HELPER_GRACE);
        }
    }

    fn remove(&self, names: &Names, _: Option<&State>, _: &mut Vec<String>) {
        let _ = std::fs::remove_file(paths::pid_file(&names.profile, FILES));
    }
}

/// A line in the watcher's log and in syslog.
fn say(line: &str) {
    println!("nsvpn: {line}");
    util::syslog(line);
}

/// `nsvpn idle-watch <profile>`, the process itself: root only, run by
/// `up`. Binds its socket, says "ok" or the error on descriptor 3, then
/// watches until SIGTERM, or until it has taken the profile down.
pub fn watch_idle(profile: &str) -> Result<()> {
    let mut word = helper::word_pipe();
    let ready = (|| -> Result<_> {
        if !nix::unistd::getuid().is_root() || !nix::unistd::geteuid().is_root() {
            bail!("`nsvpn {COMMAND}` is run by `nsvpn up` as root, not by hand");
        }
        names::validate_profile_name(profile)?;
        let st = State::load(profile)
            .ok_or_else(|| anyhow!("profile {profile} has no state: it is not being brought up"))?;
        let timeout =
            timeout_of(&st).ok_or_else(|| anyhow!("profile {profile} has no idle_timeout"))?;
        let watch = signals::watch()?;
        let sock = idle::bind_socket(profile)?;
        let record = Record {
            last_used_ms: now_ms(),
            by: "up".into(),
            forward_connections: 0,
        };
        record.save(profile)?;
        Ok((st.names, timeout, watch, sock, record))
    })();
    let (names, timeout, watch, sock, record) = match ready {
        Ok(r) => r,
        Err(e) => {
            if let Some(w) = word.as_mut() {
                let _ = w.write_all(format!("{e:#}").as_bytes());
            }
            return Err(e);
        }
    };
    if let Some(mut w) = word.take() {
        w.write_all(b"ok")
            .context("cannot tell `up` the watcher runs")?;
    }
    let mut seen = Seen {
        record,
        inside: false,
    };
    let every = idle::interval(timeout);
    println!(
        "nsvpn: watching profile {profile}: it goes down by itself once unused for {} \
         (idle_timeout); looking every {} ms",
        idle::compact(timeout.as_secs()),
        every.as_millis()
    );
    loop {
        if watch.sleep(every).is_err() {
            let by = watch.caught().map_or("a signal".into(), |s| s.to_string());
            println!("nsvpn: stopped by {by}");
            return Ok(());
        }
        let Some(st) = State::load(profile) else {
            println!("nsvpn: profile {profile} has no state any more; stopping");
            return Ok(());
        };
        // `up` makes the watcher before it marks the state complete.
        if !st.complete {
            continue;
        }
        let now = look(&names, &sock, &mut seen, timeout);
        if !now.due {
            continue;
        }
        match go_down(profile, &names, &sock, &mut seen, timeout)? {
            Ending::Stays => continue,
            Ending::Down => return Ok(()),
        }
    }
}

/// What the watcher has seen so far.
struct Seen {
    record: Record,
    /// Whether the last look found processes inside.
    inside: bool,
}

/// One look: what queued on the socket, then the processes inside; the
/// record is saved when the profile was used. Processes that the last look
/// found and this one does not left at some time in between: now, to be
/// sure never to go down early.
fn look(names: &Names, sock: &UnixDatagram, seen: &mut Seen, timeout: Duration) -> Idle {
    let now = now_ms();
    let record = &mut seen.record;
    let mut used_by = None;
    for u in idle::drain(sock) {
        used_by = Some(match u {
            Use::Forwards(n) => {
                record.forward_connections = n;
                if n == 0 {
                    "a forward connection".to_string()
                } else {
                    idle::count(n, "forward connection open", "forward connections open")
                }
            }
            Use::Enter(what) => what,
        });
    }
    let inside = super::user_processes(names, &Procs::read()).len();
    // While processes stay inside, `status` sees them itself: the record
    // is written when they come and go, not at every look.
    let mut save = used_by.is_some() || (inside > 0) != seen.inside;
    if inside > 0 {
        used_by = Some(idle::count(inside, "process inside", "processes inside"));
    } else if seen.inside && used_by.is_none() {
        used_by = Some(record.by.clone());
    }
    seen.inside = inside > 0;
    if let Some(by) = used_by {
        record.last_used_ms = now;
        save |= by != record.by;
        record.by = by;
    }
    if save && let Err(e) = record.save(&names.profile) {
        println!("nsvpn: {e:#}");
    }
    idle::judge(timeout, record, inside, now)
}

enum Ending {
    Stays,
    Down,
}

/// Takes the profile down if it is still idle once nothing else can work on
/// it: the lock held, the mark made, one more look.
fn go_down(
    profile: &str,
    names: &Names,
    sock: &UnixDatagram,
    seen: &mut Seen,
    timeout: Duration,
) -> Result<Ending> {
    let Some(lock) = Lock::try_acquire(profile)? else {
        vlog!("another nsvpn works on profile {profile}; looking again later");
        return Ok(Ending::Stays);
    };
    let mark = paths::going_down(profile);
    idle::mark_going_down(profile)?;
    let last = look(names, sock, seen, timeout);
    if !last.due {
        let _ = std::fs::remove_file(&mark);
        return Ok(Ending::Stays);
    }
    say(&format!(
        "profile {profile} goes down by itself: unused for {} (idle_timeout {}); last used by {}",
        idle::human(last.idle_for),
        idle::compact(last.timeout),
        seen.record.by
    ));
    let t0 = Instant::now();
    match teardown::teardown(names, false) {
        Ok(_) => {
            say(&format!(
                "profile {profile} is down (idle_timeout; teardown took {} ms); `nsvpn exec \
                 {profile}` brings it up again",
                t0.elapsed().as_millis()
            ));
            drop(lock);
            stop_own_unit(profile);
            Ok(Ending::Down)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&mark);
            // Refused before it removed anything (a process entered by
            // another way than nsvpn's, as `ip netns exec`): watch on.
            if paths::pid_file(profile, FILES).exists() {
                println!("nsvpn: not going down after all: {e:#}");
                return Ok(Ending::Stays);
            }
            say(&format!(
                "profile {profile}: going down by itself failed: {e:#}"
            ));
            Err(e)
        }
    }
}

/// Under `nsvpn@<profile>.service`, asks systemd to stop the unit (without
/// waiting: the stop ends this process too). Its ExecStop, `nsvpn down`,
/// finds nothing left to do.
fn stop_own_unit(profile: &str) {
    let Ok(cgroup) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    let Some(unit) = idle::own_unit(&cgroup, profile) else {
        return;
    };
    let Some(systemctl) = std::env::split_paths(std::ffi::OsStr::new(util::SYSTEM_PATH))
        .map(|d| d.join("systemctl"))
        .find(|p| p.is_file())
    else {
        say(&format!("{unit}: no systemctl to stop the unit with"));
        return;
    };
    match std::process::Command::new(systemctl)
        .args(["stop", "--no-block", &unit])
        .status()
    {
        Ok(s) if s.success() => say(&format!("asked systemd to stop {unit}")),
        Ok(s) => say(&format!("systemctl stop {unit} failed ({s})")),
        Err(e) => say(&format!("cannot run systemctl stop {unit}: {e}")),
    }
}
