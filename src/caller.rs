//! Who is asking, and what they may use. nsvpn runs in one of three ways:
//!
//! - by root itself: everything is allowed and trusted (as `ip netns exec`);
//! - through `sudo`: real uid 0 with `SUDO_UID` naming the user; sudoers
//!   decided who may run it, so every profile may be used, but nsvpn reads
//!   profiles only from the default directory and only from files root owns;
//! - as a normal user, from a binary with file capabilities
//!   (`setcap cap_net_admin,cap_sys_admin+ep`): the same trust rules, and a
//!   profile may be used only if its `[access]` section admits the user;
//!   with `cap_setuid,cap_setgid` too, an admitted user may also bring it up
//!   and down, which nsvpn then does as root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use caps::{CapSet, Capability};
use nix::sys::stat::{Mode as Mode_t, umask};
use nix::unistd::{
    Gid, Group, Uid, chdir, getgid, getgroups, getuid, setgroups, setresgid, setresuid,
};

use crate::profile::{self, Profile};
use crate::user::{self, Target};

/// The capabilities the file-capability binary needs.
pub const FILE_CAPS: &str = "cap_net_admin,cap_sys_admin+ep";

/// The capabilities that also let admitted users run `up` and `down`
/// without sudo: nsvpn becomes root for them, as sudo would.
pub const FILE_CAPS_UP: &str = "cap_net_admin,cap_sys_admin,cap_setuid,cap_setgid+ep";

/// PATH for the rest of an `up`/`down` that nsvpn runs as root for a user:
/// the user's own PATH must not choose the programs root runs.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Root,
    Sudo,
    FileCaps,
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub mode: Mode,
    /// Who the command runs as.
    pub user: Target,
}

/// What a caller asks to do with a profile, for `[access]` messages.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Up,
    Down,
    Exec,
    Forward,
    Status,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Up => "bring up",
            Action::Down => "take down",
            Action::Exec => "run commands in",
            Action::Forward => "forward ports into",
            Action::Status => "see the status of",
        })
    }
}

impl Caller {
    /// Works out the mode from the real uid, `SUDO_UID` (believed only when
    /// the real uid is root) and the process's capabilities.
    pub fn detect() -> Result<Caller> {
        if getuid().is_root() {
            let user = user::invoking_user()?;
            let mode = if user.is_root() {
                Mode::Root
            } else {
                Mode::Sudo
            };
            return Ok(Caller { mode, user });
        }
        let permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
        if !(permitted.contains(&Capability::CAP_NET_ADMIN)
            && permitted.contains(&Capability::CAP_SYS_ADMIN))
        {
            bail!(
                "nsvpn needs root: run it with sudo, or have an administrator give the binary \
                 file capabilities (setcap {FILE_CAPS} {}) and grant you profiles in their \
                 [access] section",
                this_binary()
            );
        }
        // The process's own identity: that is who the user is (only
        // `become_root_for` changes it, for up/down, after [access]).
        let mut user = user::target_for(getuid(), Some(getgid()), None)?;
        user.groups = getgroups()?;
        Ok(Caller {
            mode: Mode::FileCaps,
            user,
        })
    }

    /// Whether nsvpn acts for someone other than root: then it ignores
    /// `--profiles` and `$NSVPN_PROFILES` and reads only root-owned files.
    pub fn for_other_user(&self) -> bool {
        self.mode != Mode::Root
    }

    /// The directory profiles are read from.
    pub fn profile_dir(&self, flag: Option<&Path>) -> PathBuf {
        if !self.for_other_user() {
            return profile::profile_dir(flag);
        }
        let asked = flag.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(profile::ENV_DIR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let same = |p: &Path| {
            std::fs::canonicalize(p).ok() == std::fs::canonicalize(profile::DEFAULT_DIR).ok()
        };
        if asked.as_deref().is_some_and(|p| !same(p)) {
            eprintln!(
                "nsvpn: warning: --profiles and $NSVPN_PROFILES are ignored when nsvpn acts for \
                 {} (not root); using {}",
                self.user.name,
                profile::DEFAULT_DIR
            );
        }
        PathBuf::from(profile::DEFAULT_DIR)
    }

    /// In file-capability mode, `status` and `list` show only the profiles
    /// the user may use.
    pub fn admitted(&self, profile: Option<&Profile>) -> bool {
        profile.is_some_and(|p| self.check_access(p, Action::Status).is_ok())
    }

    /// Whether the caller may act on `profile`. Root and sudo always may
    /// (sudoers decided); in file-capability mode the profile's `[access]`
    /// must name the user or one of the user's groups.
    pub fn check_access(&self, profile: &Profile, action: Action) -> Result<()> {
        if self.mode != Mode::FileCaps {
            return Ok(());
        }
        let groups: Vec<String> = self
            .user
            .groups
            .iter()
            .chain(std::iter::once(&self.user.gid))
            .filter_map(|g| group_name(*g))
            .collect();
        match access_decision(profile, &self.user.name, &groups) {
            Ok(()) => Ok(()),
            Err(rule) => bail!(
                "{} may not {action} profile {}: {rule} (an administrator grants it in {}, or \
                 runs `sudo nsvpn ...`)",
                self.user.name,
                profile.name,
                profile.path.display()
            ),
        }
    }
}

impl Caller {
    /// Before `up` or `down`: root and sudo are root already. In
    /// file-capability mode, after the `[access]` check admitted the user,
    /// nsvpn becomes root the way sudo does (all uids and gids 0, no
    /// supplementary groups, a clean environment, `/` as the working
    /// directory, umask 022), so that the namespace, its files and the VPN
    /// client belong to root and the user cannot reach the client's secrets.
    /// That needs `cap_setuid,cap_setgid` on the binary too; without them the
    /// refusal says so.
    pub fn become_root_for(&self, action: &str, profile: &str) -> Result<()> {
        if self.mode != Mode::FileCaps {
            return Ok(());
        }
        let permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
        if !(permitted.contains(&Capability::CAP_SETUID)
            && permitted.contains(&Capability::CAP_SETGID))
        {
            bail!(
                "{} may use profile {profile}, but `{action}` without sudo needs the binary to carry cap_setuid and cap_setgid as well \
                 (setcap {FILE_CAPS_UP} {}); with only {FILE_CAPS} a user may enter and inspect \
                 profiles an administrator brought up. Or run `sudo nsvpn {action} {profile}`",
                self.user.name,
                this_binary()
            );
        }
        let root = Uid::from_raw(0);
        let wheel = Gid::from_raw(0);
        setgroups(&[]).context("setgroups")?;
        setresgid(wheel, wheel, wheel).context("setresgid")?;
        setresuid(root, root, root).context("setresuid")?;
        chdir("/").context("chdir /")?;
        umask(Mode_t::from_bits_truncate(0o022));
        let vars: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
        for k in vars {
            // SAFETY: called from main's thread before any other thread
            // exists (the async runtime starts later, inside up/down).
            unsafe { std::env::remove_var(k) };
        }
        // SAFETY: as above.
        unsafe { std::env::set_var("PATH", crate::util::SYSTEM_PATH) };
        Ok(())
    }
}

/// This binary's path, for the `setcap` line of a message.
fn this_binary() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/usr/local/bin/nsvpn".into())
}

fn group_name(gid: Gid) -> Option<String> {
    Group::from_gid(gid).ok().flatten().map(|g| g.name)
}

/// The `[access]` rule: `Ok` when `user` or one of `groups` is listed, else
/// which rule refused.
pub fn access_decision(profile: &Profile, user: &str, groups: &[String]) -> Result<(), String> {
    let a = &profile.access;
    if a.users.iter().any(|u| u == user) || a.groups.iter().any(|g| groups.contains(g)) {
        return Ok(());
    }
    if a.users.is_empty() && a.groups.is_empty() {
        return Err("the profile has no [access] section, so only root may use it".into());
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "nobody".to_string()
        } else {
            v.join(", ")
        }
    };
    Err(format!(
        "[access] admits users {} and groups {}; {user} is neither, and is in groups {}",
        list(&a.users),
        list(&a.groups),
        if groups.is_empty() {
            "none".to_string()
        } else {
            groups.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(access: &str) -> Profile {
        let text = format!("[vpn]\nkind = \"wireguard\"\nconfig = \"x.conf\"\n{access}");
        Profile::parse("corp", Path::new("/etc/nsvpn/profiles/corp.toml"), &text).unwrap()
    }

    #[test]
    fn access_by_user_or_group() {
        let p = profile("[access]\nusers = [\"alice\"]\ngroups = [\"consultants\"]\n");
        assert_eq!(access_decision(&p, "alice", &[]), Ok(()));
        assert_eq!(access_decision(&p, "bob", &["consultants".into()]), Ok(()));
        insta::assert_snapshot!(
            access_decision(&p, "mallory", &["users".into(), "dev".into()]).unwrap_err(),
            @"[access] admits users alice and groups consultants; mallory is neither, and is in groups users, dev"
        );
    }

    #[test]
    fn no_access_section_means_root_only() {
        let p = profile("");
        insta::assert_snapshot!(
            access_decision(&p, "alice", &["alice".into()]).unwrap_err(),
            @"the profile has no [access] section, so only root may use it"
        );
    }

    #[test]
    fn only_groups_listed() {
        let p = profile("[access]\ngroups = [\"ops\"]\n");
        assert_eq!(access_decision(&p, "carol", &["ops".into()]), Ok(()));
        insta::assert_snapshot!(
            access_decision(&p, "carol", &[]).unwrap_err(),
            @"[access] admits users nobody and groups ops; carol is neither, and is in groups none"
        );
    }
}
