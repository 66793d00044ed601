//! The user a command runs as: whoever invoked nsvpn.

use std::ffi::CString;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use nix::unistd::{Gid, Uid, User, getgrouplist, getuid};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
    pub name: String,
    pub home: PathBuf,
    pub shell: PathBuf,
}

impl Target {
    pub fn is_root(&self) -> bool {
        self.uid.is_root()
    }
}

/// Who invoked nsvpn: under sudo (real uid 0 with `SUDO_UID` set) the sudo
/// user, with `SUDO_GID` as primary group; else the real uid. `SUDO_*` is
/// believed only when the real uid is root, since only sudo can have set it
/// then. Supplementary groups come from the group database.
pub fn invoking_user() -> Result<Target> {
    let real = getuid();
    let sudo_uid = std::env::var("SUDO_UID").ok().filter(|s| !s.is_empty());
    if real.is_root()
        && let Some(u) = sudo_uid
    {
        let uid = Uid::from_raw(
            u.parse()
                .map_err(|_| anyhow!("SUDO_UID={u:?} is not a number"))?,
        );
        let gid = match std::env::var("SUDO_GID").ok().filter(|s| !s.is_empty()) {
            Some(g) => Some(Gid::from_raw(
                g.parse()
                    .map_err(|_| anyhow!("SUDO_GID={g:?} is not a number"))?,
            )),
            None => None,
        };
        let fallback_name = std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty());
        return target_for(uid, gid, fallback_name);
    }
    if real.is_root() {
        return root();
    }
    target_for(real, None, None)
}

/// Root itself (not for a sudo user): its entry, and the groups this
/// process has. Root's command keeps root's groups and powers (as `ip
/// netns exec`'s does), so its group list is not looked up: that would
/// load every NSS module `group:` names, for nothing.
fn root() -> Result<Target> {
    let root = Uid::from_raw(0);
    let u = User::from_uid(root)
        .context("cannot look up uid 0")?
        .ok_or_else(|| anyhow!("the user database has no entry for uid 0"))?;
    Ok(Target {
        uid: root,
        gid: u.gid,
        groups: nix::unistd::getgroups().context("cannot read this process's groups")?,
        name: u.name,
        home: u.dir,
        shell: u.shell,
    })
}

/// `nobody`, for helpers that need no one's rights (a profile's kept
/// forwards).
pub fn nobody() -> Result<Target> {
    let u = User::from_name("nobody")
        .context("cannot look up the user nobody")?
        .ok_or_else(|| anyhow!("the user database has no user nobody"))?;
    target_for(u.uid, Some(u.gid), None)
}

/// Resolves `uid` through the user database. A uid without an entry still
/// runs (as `sudo -u '#1234'` does), with only its primary group.
pub fn target_for(uid: Uid, gid: Option<Gid>, fallback_name: Option<String>) -> Result<Target> {
    let entry = User::from_uid(uid).with_context(|| format!("cannot look up uid {uid}"))?;
    match entry {
        Some(u) => {
            let gid = gid.unwrap_or(u.gid);
            let cname = CString::new(u.name.clone())?;
            let groups = getgrouplist(&cname, gid)
                .with_context(|| format!("cannot list the groups of {}", u.name))?;
            Ok(Target {
                uid,
                gid,
                groups,
                name: u.name,
                home: u.dir,
                shell: u.shell,
            })
        }
        None => {
            let Some(gid) = gid else {
                bail!("uid {uid} has no entry in the user database and no SUDO_GID was given");
            };
            Ok(Target {
                uid,
                gid,
                groups: vec![gid],
                name: fallback_name.unwrap_or_else(|| uid.to_string()),
                home: PathBuf::from("/"),
                shell: PathBuf::from("/bin/sh"),
            })
        }
    }
}
