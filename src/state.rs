//! Runtime state in /run/nsvpn (root-owned): what `up` created, the pid of
//! the tunnel process, and per-profile locks.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::backend::{Kind, Recorded};
use crate::names::{Names, VethAddrs};
use crate::paths::{self, RUN_DIR};
use crate::tunnel::Overrides;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub profile: String,
    pub kind: Kind,
    pub names: Names,
    pub veth: VethAddrs,
    /// The tunnel process nsvpn started (wireguard-go), if any.
    pub pid: Option<u32>,
    /// Seconds since the epoch when `up` began.
    pub started: u64,
    /// False while `up` runs: a state left incomplete means it crashed.
    pub complete: bool,
    /// Seconds since the epoch when `up` finished (None in a state written
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected: Option<u64>,
    /// The profile's `[routes]`, `[dns]` and `[hosts]`, for the hook.
    #[serde(default)]
    pub overrides: Overrides,
    /// The parts of the runtime made so far, in order (see
    /// `lifecycle::parts`).
    #[serde(default)]
    pub parts: Vec<String>,
    /// What the kind records for its later steps; `backend/` owns it.
    #[serde(flatten)]
    pub backend: Recorded,
}

fn ensure_run_dir() -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(RUN_DIR)
        .with_context(|| format!("cannot create {RUN_DIR}"))
}

impl State {
    pub fn save(&self) -> Result<()> {
        let dir = paths::profile_dir(&self.profile);
        // Readable by all: a file-capability `exec` runs as the user and
        // reads the state. Nothing secret is in it; logs and the hook socket
        // are root-only.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let text = serde_json::to_string_pretty(self)?;
        crate::util::write_atomic(&paths::state_file(&self.profile), text.as_bytes(), 0o644)
    }

    pub fn load(profile: &str) -> Option<State> {
        let text = fs::read_to_string(paths::state_file(profile)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The names of the profiles with a state, from a listing of the run
    /// directory alone (no state is read).
    pub fn names() -> Vec<String> {
        fs::read_dir(RUN_DIR)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|name| paths::state_file(name).exists())
            .collect()
    }

    /// Every profile that has state (up, or left by a crashed `up`).
    pub fn all() -> Vec<State> {
        let mut out: Vec<State> = fs::read_dir(RUN_DIR)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(State::load))
            .collect();
        out.sort_by(|a, b| a.profile.cmp(&b.profile));
        out
    }
}

/// Removes the profile's runtime directory. Missing is fine.
pub fn remove(profile: &str) -> Result<()> {
    match fs::remove_dir_all(paths::profile_dir(profile)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e)
            .with_context(|| format!("cannot remove {}", paths::profile_dir(profile).display())),
    }
}

/// An exclusive per-profile lock: `/run/nsvpn/<profile>.lock`, held with
/// flock. The file is removed when the lock is released; a locker that finds
/// it locked a file that has meanwhile been removed tries again, so removal
/// never lets two holders in.
pub struct Lock {
    path: PathBuf,
    _flock: Flock<fs::File>,
}

impl Lock {
    /// The lock if nobody holds it, at once; `None` if another nsvpn works
    /// on the profile (the idle watcher, which never waits for `up` or
    /// `down`).
    pub fn try_acquire(profile: &str) -> Result<Option<Lock>> {
        ensure_run_dir()?;
        let path = paths::lock_file(profile);
        loop {
            let f = open_lock(&path)?;
            let locked = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, e)) => {
                    return Err(anyhow!(e).context(format!("cannot lock {}", path.display())));
                }
            };
            if still_there(&locked, &path)? {
                return Ok(Some(Lock {
                    path,
                    _flock: locked,
                }));
            }
        }
    }

    pub fn acquire(profile: &str) -> Result<Lock> {
        ensure_run_dir()?;
        let path = paths::lock_file(profile);
        loop {
            let f = open_lock(&path)?;
            let locked = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                    eprintln!("nsvpn: waiting for another nsvpn working on profile {profile} ...");
                    wait_for(f, &path).with_context(|| {
                        format!("stopped waiting for the other nsvpn working on profile {profile}")
                    })?
                }
                Err((_, e)) => {
                    return Err(anyhow!(e).context(format!("cannot lock {}", path.display())));
                }
            };
            if still_there(&locked, &path)? {
                return Ok(Lock {
                    path,
                    _flock: locked,
                });
            }
        }
    }
}

fn open_lock(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the lock {}", path.display()))
}

/// Whether the locked file is still the one at `path` (a holder removes it
/// when it lets go: then the lock is worth nothing, and the locker tries
/// again).
fn still_there(locked: &Flock<fs::File>, path: &Path) -> Result<bool> {
    let held = locked.metadata()?;
    Ok(fs::metadata(path).is_ok_and(|now| now.ino() == held.ino() && now.dev() == held.dev()))
}

/// Waits for the lock another nsvpn holds. Blocked in flock(2), nsvpn would
/// not see a stop signal it watches (`signals::watch`), so then it sleeps on
/// the signalfd between tries, 100 ms apart.
fn wait_for(f: fs::File, path: &Path) -> Result<Flock<fs::File>> {
    let cannot =
        |e: nix::errno::Errno| anyhow!(e).context(format!("cannot lock {}", path.display()));
    let Some(stop) = crate::signals::watched() else {
        return Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| cannot(e));
    };
    let mut f = f;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) => f = back,
            Err((_, e)) => return Err(cannot(e)),
        }
        stop.sleep(std::time::Duration::from_millis(100))?;
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::wireguard::Implementation;

    fn state(listen_port: Option<u16>) -> State {
        State {
            profile: "x".into(),
            kind: Kind::WireGuard,
            names: Names::for_profile("x"),
            veth: VethAddrs::for_profile("x"),
            pid: Some(42),
            started: 1,
            complete: true,
            connected: None,
            overrides: Default::default(),
            parts: vec!["namespace".into()],
            backend: Recorded {
                implementation: Some(Implementation::Userspace),
                listen_port,
                ipsec_if_id: None,
                openvpn: None,
            },
        }
    }

    /// A state file written before `listen_port` existed still loads (a
    /// profile that was up across the upgrade), and the port round-trips.
    #[test]
    fn old_state_files_load_and_the_listen_port_round_trips() {
        let old = serde_json::to_string(&state(None)).unwrap();
        assert!(!old.contains("listen_port"), "{old}");
        assert_eq!(serde_json::from_str::<State>(&old).unwrap(), state(None));
        let new = serde_json::to_string(&state(Some(51820))).unwrap();
        assert_eq!(
            serde_json::from_str::<State>(&new).unwrap(),
            state(Some(51820))
        );
    }
}
