//! A profile's runtime as a list of parts. Each part is made by `up`, in
//! the order of [`PARTS`], and recorded in the state as it is made; each is
//! checked for health, shown in `status`, and removed in the reverse order
//! by `down`, by the rollback of a failed `up` and by the clean-up after a
//! crash. Adding a part is a file here and a line in [`PARTS`].

mod forwards;
mod helper;
mod namespace;
mod resolver;
mod stack;
mod supervisor;
mod tunnel;
mod veth;
mod watcher;

use std::os::fd::OwnedFd;
use std::time::Duration;

use anyhow::Result;

use crate::backend::{Prepared, Reconnect};
use crate::ending::Ending;
use crate::names::Names;
use crate::procs::Procs;
use crate::profile::Profile;
use crate::state::State;

/// The parts, in the order `up` makes them:
/// - the namespace first: everything else lives in it or points at it;
/// - the veth pair next: its namespace end is moved in when it is made;
/// - the tunnel: the VPN client and its device, with the kill switch's
///   routes of a split profile;
/// - a split profile's user-mode stack only after the tunnel: until the
///   VPN's routes and their `unreachable` twins are in place, nothing may
///   have a way out;
/// - the split resolver last: the tunnel says which servers and domains
///   it splits, and it asks the host's resolver through the stack;
/// - the kept forwards after that: their names resolve through the
///   profile's DNS (the resolver's, for a split profile) when they start;
/// - an IPsec profile's supervisor, which makes its tunnel again when the
///   gateway lost the SA: it supervises a profile that is all there;
/// - the idle watcher (`idle_timeout`) last: it watches a profile that is
///   all there.
///
/// Removal runs backwards: the watcher first, so that it never looks at a
/// profile half removed; then the other helpers (the forwards free the
/// host's ports before anything they lead to goes); then the tunnel, so the VPN
/// client can still say goodbye to its server through the host's network;
/// the namespace last, so nothing is ever left pointing into a namespace
/// that is gone (a running stack would even keep it alive, unnamed).
pub const PARTS: &[&dyn Part] = &[
    &namespace::Namespace,
    &veth::Veth,
    &tunnel::Tunnel,
    &stack::Stack,
    &resolver::Resolver,
    &forwards::Forwards,
    &supervisor::Supervisor,
    &watcher::Watcher,
];

pub use forwards::{COMMAND as KEPT_FORWARDS, serve_kept};
pub use supervisor::{COMMAND as IPSEC_SUPERVISE, supervise};
pub use watcher::{COMMAND as IDLE_WATCH, watch_idle};

/// Whether the profile's supervisor runs (see [`supervisor`]).
pub fn supervisor_running(profile: &str) -> bool {
    supervisor::running(profile).is_some()
}

/// One part of a profile's runtime.
pub trait Part: Sync {
    /// Its name in the state, in `status` and in messages.
    fn name(&self) -> &'static str;

    /// Whether the profile has this part at all (a split profile's helpers).
    fn wanted(&self, _st: &State) -> bool {
        true
    }

    /// Makes it, with what earlier parts made; false when there turned out
    /// to be nothing to make (a split profile without split domains has no
    /// resolver).
    fn create(&self, cx: &mut Making<'_>) -> Result<bool>;

    /// Whether it is there and working. A quick look (for `exec`) checks
    /// only what can make the profile broken.
    fn check(&self, look: &mut Look<'_>) -> Check;

    /// What it is, for `status`: its name on the machine and what runs it.
    fn show(&self, st: &State) -> String;

    /// The processes of its own that run inside the namespace (a helper
    /// bound there): not the user's, so `down` does not wait for them.
    fn processes(&self, _names: &Names, _procs: &Procs) -> Vec<u32> {
        Vec::new()
    }

    /// Whether any trace of it is on the machine (found by name, with or
    /// without state).
    fn exists(&self, names: &Names, procs: &Procs) -> bool;

    /// Asks its processes to end: each part's are signalled in turn, then
    /// all are waited for at once (see [`remove_all`]).
    fn stop(&self, _names: &Names, _st: Option<&State>, _procs: &Procs, _ending: &mut Ending) {}

    /// Whether its removal may run while the other parts' processes end:
    /// nothing any of them does on its way out needs it.
    fn independent(&self) -> bool {
        false
    }

    /// Removes what is left of it once its processes are gone; what is
    /// already gone is fine. Problems are added to `problems`, and removal
    /// goes on with the next part.
    fn remove(&self, names: &Names, st: Option<&State>, problems: &mut Vec<String>);
}

/// What `up` hands each part it makes.
pub struct Making<'a> {
    pub profile: &'a Profile,
    pub names: &'a Names,
    pub prepared: &'a Prepared,
    pub st: &'a mut State,
    /// The namespace, opened, once it is made.
    pub ns: Option<OwnedFd>,
    /// nsvpn's own time, summed over the parts.
    pub own: Duration,
    /// Time spent waiting for the VPN (handshake, login).
    pub waited: Duration,
    /// What the tunnel is: "WireGuard, wireguard-go", "OpenVPN, tunnel ...".
    pub what: String,
}

/// A part's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Fine,
    /// Not working, but the profile is still usable (and stays sealed); the
    /// text says what is wrong and what to do. `status` shows it.
    Degraded(String),
    /// The VPN client lost its connection and is making it again; the text
    /// says since when and the last error.
    Reconnecting(String),
    /// The profile cannot work; the text says why.
    Broken(String),
}

impl Check {
    /// The word `status` shows for a part.
    pub fn word(&self) -> &'static str {
        match self {
            Check::Fine => "ok",
            Check::Degraded(_) => "degraded",
            Check::Reconnecting(_) => "reconnecting",
            Check::Broken(_) => "broken",
        }
    }
}

/// What the parts' checks look at: the machine (through a [`Probe`], a fake
/// in unit tests), the state, and what earlier checks found.
pub struct Look<'a> {
    pub probe: &'a dyn Probe,
    pub profile: &'a str,
    pub st: &'a State,
    /// Every check, and the client asked whether it reconnects (`status`,
    /// `list`); else only what can make the profile broken, as cheaply as
    /// possible (`exec`).
    pub thorough: bool,
    /// The namespace, once the namespace's check opened it.
    pub ns: Option<OwnedFd>,
    /// The client's reconnect, when it was asked and is reconnecting.
    pub reconnect: Option<Reconnect>,
}

/// What judging a profile's health reads from the machine (a fake in the
/// unit tests, as `exec.rs` has its recording `Sys`).
pub trait Probe {
    fn alive(&self, pid: u32) -> bool;
    fn open_netns(&self, name: &str) -> Result<OwnedFd>;
    fn has_link(&self, ns: std::os::fd::BorrowedFd<'_>, name: &str) -> Result<bool>;
    /// Whether the host (the namespace nsvpn runs in) has the link `name`.
    fn host_has_link(&self, name: &str) -> bool;
    fn reconnecting(&self, profile: &str, st: &State) -> Result<Option<Reconnect>, String>;
}

/// The real machine.
pub struct Machine;

impl Probe for Machine {
    fn alive(&self, pid: u32) -> bool {
        crate::util::alive(pid)
    }
    fn open_netns(&self, name: &str) -> Result<OwnedFd> {
        crate::netns::open(name)
    }
    fn has_link(&self, ns: std::os::fd::BorrowedFd<'_>, name: &str) -> Result<bool> {
        crate::netns::has_link(ns, name)
    }
    fn host_has_link(&self, name: &str) -> bool {
        crate::netns::host_has_link(name)
    }
    fn reconnecting(&self, profile: &str, st: &State) -> Result<Option<Reconnect>, String> {
        crate::backend::reconnecting(profile, st)
    }
}

/// Makes every part in order, recording each in the state once made. On
/// failure the caller removes them all ([`remove_all`]).
pub fn create_all(cx: &mut Making<'_>) -> Result<()> {
    for part in PARTS {
        crate::signals::check()?;
        crate::vtrace!("part {}: create", part.name());
        if part.wanted(cx.st) && part.create(cx)? {
            cx.st.parts.push(part.name().to_string());
            cx.st.save()?;
        }
    }
    Ok(())
}

/// Each part's check, in order. With `stop_at_broken`, stops after the
/// first broken one (the later checks would only repeat it).
pub fn check_all(look: &mut Look<'_>, stop_at_broken: bool) -> Vec<(&'static dyn Part, Check)> {
    let mut out = Vec::new();
    // A state from before parts were recorded lists none: every part the
    // profile wants is checked then.
    let recorded =
        |p: &dyn Part| look.st.parts.is_empty() || look.st.parts.iter().any(|n| n == p.name());
    for part in PARTS {
        if !part.wanted(look.st) || !recorded(*part) {
            continue;
        }
        let c = part.check(look);
        let broken = matches!(c, Check::Broken(_));
        out.push((*part, c));
        if broken && stop_at_broken {
            break;
        }
    }
    out
}

/// The processes inside the namespace that are the user's: every one but
/// the parts' own.
pub fn user_processes(names: &Names, procs: &Procs) -> Vec<crate::netns::Process> {
    let inside = crate::netns::processes_in(&names.netns, procs);
    // Nothing inside (an idle profile, as its watcher sees it): no need to
    // look for the parts' own.
    if inside.is_empty() {
        return inside;
    }
    let own: Vec<u32> = PARTS
        .iter()
        .flat_map(|p| p.processes(names, procs))
        .collect();
    inside
        .into_iter()
        .filter(|p| !own.contains(&p.pid))
        .collect()
}

/// Whether any trace of any part is on the machine.
pub fn any_exists(names: &Names, procs: &Procs) -> bool {
    PARTS.iter().any(|p| p.exists(names, procs))
}

/// How long a helper gets to end before SIGKILL.
pub const HELPER_GRACE: Duration = Duration::from_secs(2);

/// Removes every part. Every part is tried, recorded or not: a crash
/// between making a part and recording it must not leave it behind, and
/// each part finds what it made by its deterministic name (its processes in
/// `procs`, one look at /proc for all of them).
///
/// Why this order, and what runs at once:
/// - every part's processes are asked to end in the reverse of the order
///   `up` made the parts (the forwards free the host's ports first; the VPN
///   client says goodbye to its server while the host's network still
///   carries it), then all are waited for together: `down` takes as long as
///   the slowest of them, not their sum;
/// - meanwhile, on a thread of its own, the independent parts go (the veth
///   pair, and with it a WireGuard device, deleted in one batch: a child
///   process waits out the kernel's RCU barrier that frees them, which
///   nothing depends on, and the thread goes on once the kernel announced
///   them deleted, see `unlinking.rs`), and the wait for the processes
///   begins once they are gone (wireguard-go ends by itself when its device
///   is deleted, and is signalled only if it did not);
/// - then what is left, in reverse order, the namespace last: nothing is
///   ever left pointing into a namespace that is gone.
pub fn remove_all(names: &Names, st: Option<&State>, procs: &Procs) -> Vec<String> {
    let mut problems = std::thread::scope(|s| {
        let meanwhile = s.spawn(|| {
            let mut problems = Vec::new();
            for part in PARTS.iter().rev().filter(|p| p.independent()) {
                crate::vtrace!("part {}: remove (meanwhile)", part.name());
                part.remove(names, st, &mut problems);
                crate::vtrace!("part {}: removed", part.name());
            }
            problems
        });
        let mut ending = Ending::new();
        for part in PARTS.iter().rev() {
            crate::vtrace!("part {}: stop", part.name());
            part.stop(names, st, procs, &mut ending);
        }
        let problems = meanwhile
            .join()
            .unwrap_or_else(|_| vec!["removing the veth pair failed (a thread panicked)".into()]);
        let killed = ending.wait();
        crate::vtrace!("processes ended ({} killed)", killed.len());
        problems
    });
    for part in PARTS.iter().rev().filter(|p| !p.independent()) {
        crate::vtrace!("part {}: remove", part.name());
        part.remove(names, st, &mut problems);
    }
    crate::vtrace!("parts removed");
    problems
}
