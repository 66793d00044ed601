//! Re-establishing an IPsec profile's tunnel by itself, on the userspace
//! path, once the gateway lost the SA (it restarted and sent DELETE, or
//! stopped answering dead peer detection).
//!
//! charon cannot do it alone once its TUN device is in the namespace
//! (verified, see integration/lab-notes-ipsec.md): a new CHILD_SA needs the
//! virtual IP on a host interface (kernel-libipsec's route, whose failure
//! fails the CHILD_SA) and an interface named like the TUN, gone from the
//! host; its kernel-netlink then puts the virtual IP on the host's uplink.
//! So charon never re-initiates by itself (`dpd_action = clear`), and the
//! profile's supervisor (a part, `lifecycle::parts::supervisor`) does what
//! `up` did, keeping the namespace and what runs in it: it ends the charon
//! without an SA (its TUN, the dead tunnel, goes with it: nothing leaves
//! meanwhile), starts a new one with a new TUN, initiates, and moves that
//! TUN in, with the virtual IP, routes and DNS the gateway gives now. On the
//! host, the same as `up`: the new TUN carries the virtual IP between the
//! CHILD_SA's installation and the move, never the uplink.
//!
//! While it does, [`Record`] says since when and the last error: `status`
//! shows the profile reconnecting, with the reason.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Prepared;
use crate::backend::Reconnect;
use crate::backend::client;
use crate::names::Names;
use crate::procs::Procs;
use crate::signals::Watch;
use crate::state::{Lock, State};
use crate::{paths, util};

/// How often the supervisor asks charon for its SA.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How many looks in a row must find no CHILD_SA before the supervisor
/// acts (a rekey replaces the CHILD_SA in a moment between two looks).
const MISSES: u32 = 2;

/// The pause between two failed attempts, growing to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// How long a charon gets to end before SIGKILL.
const CHARON_GRACE: Duration = Duration::from_secs(3);

/// What the supervisor is doing: reconnecting since when, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Seconds since the epoch when the SA was found lost.
    pub since: u64,
    /// Why it was lost, then why the last attempt failed.
    pub last_error: String,
    /// Attempts made so far.
    pub attempts: u32,
}

fn record_file(profile: &str) -> PathBuf {
    paths::private_dir(profile).join("ipsec-reconnect.json")
}

impl Record {
    pub fn load(profile: &str) -> Option<Record> {
        let text = std::fs::read_to_string(record_file(profile)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn save(&self, profile: &str) -> Result<()> {
        util::write_atomic(
            &record_file(profile),
            serde_json::to_string(self)?.as_bytes(),
            0o600,
        )
    }

    pub fn remove(profile: &str) {
        let _ = std::fs::remove_file(record_file(profile));
    }

    pub fn reconnect(&self) -> Reconnect {
        Reconnect {
            since: self.since,
            last_error: Some(format!(
                "{} (attempt {})",
                self.last_error,
                self.attempts.max(1)
            )),
        }
    }
}

/// The profile's supervisor's side: what it knows between two looks.
pub struct Keeper {
    profile: String,
    prepared: Prepared,
    /// Looks in a row that found no CHILD_SA.
    misses: u32,
}

impl Keeper {
    pub fn new(profile: &str, prepared: Prepared) -> Keeper {
        Keeper {
            profile: profile.to_string(),
            prepared,
            misses: 0,
        }
    }

    /// One look at charon; when its SA is lost, reconnects (until it works,
    /// or a stop signal). `say` writes a line to the supervisor's log.
    pub fn look(&mut self, st: &State, watch: &Watch, say: &dyn Fn(&str)) -> Result<()> {
        let profile = self.profile.clone();
        let Some(pid) = st.pid else { return Ok(()) };
        // A charon that died by itself (killed): the tunnel part says the
        // profile is broken; nothing to reconnect with.
        if !util::alive(pid) {
            self.misses = 0;
            return Ok(());
        }
        match super::query(&profile) {
            Ok(Some(sa)) if sa.child.is_some() => {
                self.misses = 0;
                return Ok(());
            }
            // No SA, or charon does not answer although it runs.
            _ => self.misses += 1,
        }
        if self.misses < MISSES {
            return Ok(());
        }
        self.misses = 0;
        let why = super::why_lost(&profile);
        // `status` says reconnecting, since now, and why.
        let mut record = Record {
            since: util::now_unix(),
            last_error: why.clone(),
            attempts: 0,
        };
        record.save(&profile)?;
        say(&format!(
            "profile {profile}: the IPsec SA is lost ({why}); reconnecting with a new charon"
        ));
        let mut pause = FIRST_PAUSE;
        loop {
            watch.check()?;
            record.attempts += 1;
            let t0 = Instant::now();
            match self.attempt(watch) {
                Ok(vips) => {
                    Record::remove(&profile);
                    say(&format!(
                        "profile {profile}: reconnected (attempt {}, {} s after the SA was lost; \
                         this attempt {} ms), virtual IP {}",
                        record.attempts,
                        util::now_unix().saturating_sub(record.since),
                        t0.elapsed().as_millis(),
                        vips.join(", ")
                    ));
                    return Ok(());
                }
                Err(e) => {
                    watch.check()?;
                    // Taken down meanwhile (this process is ended then).
                    if State::load(&profile).is_none() {
                        return Ok(());
                    }
                    // The first line: charon's log follows it.
                    let e = format!("{e:#}");
                    record.last_error = e.lines().next().unwrap_or_default().to_string();
                    say(&format!(
                        "profile {profile}: attempt {} failed: {e}",
                        record.attempts
                    ));
                    record.save(&profile)?;
                    watch.sleep(pause)?;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }

    /// One attempt: a new charon in place of the old one (under the
    /// profile's lock, so that `down` always finds the charon that runs),
    /// initiated (without the lock: it may take as long as `up` waits), its
    /// TUN moved in (under the lock again). The virtual IPs, on success.
    fn attempt(&mut self, watch: &Watch) -> Result<Vec<String>> {
        let profile = self.profile.clone();
        let (names, pid, tun) = {
            let _lock = lock(&profile)?;
            let mut st = current(&profile)?;
            let names = st.names.clone();
            stop_charons(&names, st.pid);
            let mut problems = Vec::new();
            super::remove_rule(&profile, &mut problems);
            if let Some(p) = problems.first() {
                bail!("{p}");
            }
            watch.check()?;
            let (pid, tun) = super::start_charon(
                &profile,
                &names,
                &self.prepared,
                super::Datapath::Userspace,
                |pid| {
                    st.pid = Some(pid);
                    st.save()
                },
            )?;
            let tun = tun.ok_or_else(|| anyhow!("charon opened no TUN device"))?;
            (names, pid, tun)
        };
        let sa = match super::establish(&profile, &self.prepared, super::Datapath::Userspace, pid) {
            Ok(sa) => sa,
            Err(e) => {
                // A half-made SA may have put the virtual IP on the new TUN,
                // still on the host: this charon goes, and its TUN with it.
                stop_charons(&names, Some(pid));
                return Err(e);
            }
        };
        let _lock = lock(&profile)?;
        let st = current(&profile)?;
        if st.pid != Some(pid) {
            bail!("another nsvpn replaced the charon meanwhile");
        }
        let ns = crate::netns::open(&names.netns)?;
        let connects = super::TunnelRecord::load(&profile).map_or(1, |r| r.connects) + 1;
        let moved = super::move_in(
            &profile,
            &names,
            Some(&tun),
            &sa,
            std::os::fd::AsFd::as_fd(&ns),
            &st.overrides,
            connects,
        );
        if let Err(e) = moved {
            stop_charons(&names, Some(pid));
            return Err(e);
        }
        Ok(sa.vips)
    }
}

/// The profile's lock, waited for (an `up` or `down` under way: a `down`
/// ends this supervisor meanwhile).
fn lock(profile: &str) -> Result<Lock> {
    Lock::acquire(profile)
}

/// The profile's state, as long as it is up.
fn current(profile: &str) -> Result<State> {
    match State::load(profile) {
        Some(st) if st.complete => Ok(st),
        Some(_) => Err(anyhow!("profile {profile} is being brought up or down")),
        None => Err(anyhow!("profile {profile} is down")),
    }
}

/// Ends the profile's charon(s): the one the state names and any other
/// serving its tunnel, asked over VICI to delete what SAs it has left
/// first; SIGKILL after [`CHARON_GRACE`]. Their TUN devices go with them.
fn stop_charons(names: &Names, pid: Option<u32>) {
    let mut pids: Vec<u32> = pid
        .filter(|p| client::is_ours(*p, &names.tunnel) && util::alive(*p))
        .into_iter()
        .collect();
    for p in client::find_processes(&Procs::read(), &names.tunnel) {
        if !pids.contains(&p) {
            pids.push(p);
        }
    }
    if pids.is_empty() {
        return;
    }
    super::disconnect(&names.profile);
    for p in &pids {
        let _ = kill(Pid::from_raw(*p as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + CHARON_GRACE;
    let mut killed = false;
    while pids.iter().any(|p| util::alive(*p)) {
        if Instant::now() >= deadline {
            if killed {
                break;
            }
            for p in pids.iter().filter(|p| util::alive(**p)) {
                let _ = kill(Pid::from_raw(*p as i32), Signal::SIGKILL);
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
