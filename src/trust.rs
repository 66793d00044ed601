//! Which files nsvpn believes. When it acts for someone other than root
//! (through sudo, or as a file-capability binary), a profile and every file
//! it names must be owned by root and writable by root alone, and so must
//! every directory above them: otherwise the user could have written what
//! nsvpn is about to run as root. Secrets readable by others get a warning,
//! as wg-quick gives one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use nix::unistd::{Uid, User};

static REQUIRED: OnceLock<bool> = OnceLock::new();

/// Turns the ownership checks on (once, at start-up, from the caller).
pub fn require_root_owned(on: bool) {
    let _ = REQUIRED.set(on);
}

fn required() -> bool {
    REQUIRED.get().copied().unwrap_or(false)
}

/// What is wrong with one path's owner and mode, if anything.
pub fn problem(uid: u32, mode: u32, is_dir: bool) -> Option<String> {
    let kind = if is_dir { "directory" } else { "file" };
    if uid != 0 {
        return Some(format!("the {kind} is owned by uid {uid}, not root"));
    }
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        };
        return Some(format!(
            "the {kind} is writable by {who} (mode {:04o})",
            mode & 0o7777
        ));
    }
    None
}

/// What a checked file is to its profile: where it belongs when it has to
/// move, and which line of the profile names it.
#[derive(Debug, Clone, Copy)]
pub enum Role<'a> {
    /// The profile itself (it belongs in /etc/nsvpn/profiles, readable by
    /// all: users list profiles).
    Profile,
    /// A file the profile's `field` (dotted, `vpn.config`) names; `profile`
    /// is the profile's own file.
    Field { profile: &'a Path, field: &'a str },
}

impl<'a> Role<'a> {
    /// The role of the file `field` of `profile` names.
    pub fn field(profile: &'a crate::profile::Profile, field: &'a str) -> Role<'a> {
        Role::Field {
            profile: &profile.path,
            field,
        }
    }
}

/// Where files named by profiles go when they must move into root's tree.
pub const FILES_DIR: &str = "/etc/nsvpn";

/// One path on the way from a file up to `/`, as found on disk.
#[derive(Debug, Clone)]
struct Seen {
    path: PathBuf,
    uid: u32,
    mode: u32,
    is_dir: bool,
    /// The owner's name and home directory, when it is not root.
    owner: Option<(String, PathBuf)>,
}

impl Seen {
    /// A directory that belongs to a user (their home or anything in it) or
    /// that everyone may write (/tmp, /var/tmp, /dev/shm): a file there must
    /// move, since making such a directory root's would break it.
    fn is_a_users(&self) -> bool {
        let in_home = |(_, h): &(String, PathBuf)| h != Path::new("/") && self.path.starts_with(h);
        self.is_dir
            && (self.mode & 0o002 != 0
                || (self.uid != 0 && self.owner.as_ref().is_some_and(in_home)))
    }

    /// "a directory of alice (uid 1000), not root's", for messages.
    fn whose(&self) -> String {
        match &self.owner {
            _ if self.mode & 0o002 != 0 => format!(
                "a directory everyone may write (mode {:04o})",
                self.mode & 0o7777
            ),
            Some((name, _)) => format!("a directory of {name} (uid {}), not root's", self.uid),
            None => format!("a directory of uid {}, not root's", self.uid),
        }
    }
}

/// Checks `path` (`what` names it in the error, e.g. `profile "corp"
/// (...): field vpn.config`), when nsvpn acts for a non-root user.
pub fn check(path: &Path, what: &str, role: Role<'_>) -> Result<()> {
    if !required() {
        return Ok(());
    }
    let real = std::fs::canonicalize(path)
        .with_context(|| format!("{what}: cannot resolve {}", path.display()))?;
    // The file as named (a symlink's own directory counts too) and as resolved.
    let mut chain: Vec<&Path> = real.ancestors().collect();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        chain.extend(parent.ancestors().filter(|p| !p.as_os_str().is_empty()));
    }
    let mut seen = Vec::new();
    for p in chain {
        let m = std::fs::metadata(p)
            .with_context(|| format!("{what}: cannot inspect {}", p.display()))?;
        let owner = (m.uid() != 0)
            .then(|| User::from_uid(Uid::from_raw(m.uid())).ok().flatten())
            .flatten()
            .map(|u| (u.name, u.dir));
        seen.push(Seen {
            path: p.to_path_buf(),
            uid: m.uid(),
            mode: m.mode(),
            is_dir: m.is_dir(),
            owner,
        });
    }
    let dest = destination(&real, role);
    match verdict(path, &real, &seen, role, &dest) {
        None => Ok(()),
        Some(why) => bail!("{what}: {why}"),
    }
}

/// Where the file goes in root's tree: /etc/nsvpn/profiles/<name> for a
/// profile, /etc/nsvpn/<name> for another file, or, when another file
/// already has that name, /etc/nsvpn/<profile>-<name>.
fn destination(real: &Path, role: Role<'_>) -> PathBuf {
    let name = real.file_name().unwrap_or_default();
    match role {
        Role::Profile => Path::new(crate::profile::DEFAULT_DIR).join(name),
        Role::Field { profile, .. } => {
            let plain = Path::new(FILES_DIR).join(name);
            let taken = std::fs::canonicalize(&plain).is_ok_and(|p| p != real);
            if taken {
                let stem = profile.file_stem().unwrap_or_default().to_string_lossy();
                Path::new(FILES_DIR).join(format!("{stem}-{}", name.to_string_lossy()))
            } else {
                plain
            }
        }
    }
}

const RULE: &str = "When nsvpn acts for a user other than root it reads only files that root \
                    owns and alone may write, in directories the same";

/// Why `path` (resolved: `real`; `seen`: it and every directory above it)
/// cannot be trusted and what fixes it, or None when it can. A file in a
/// user's directory (or one everyone may write) is copied to `dest`, since
/// making that directory root's would break it; anything else, already in
/// root's tree, is made root's alone.
fn verdict(path: &Path, real: &Path, seen: &[Seen], role: Role<'_>, dest: &Path) -> Option<String> {
    let bad: Vec<(&Seen, String)> = seen
        .iter()
        .filter_map(|s| problem(s.uid, s.mode, s.is_dir).map(|why| (s, why)))
        .collect();
    if bad.is_empty() {
        return None;
    }
    if let Some(dir) = seen.iter().find(|s| s.is_a_users()) {
        return Some(format!(
            "{} cannot be trusted: it is in {}, {}. {RULE}. Rather than making that directory \
             root's, {}",
            path.display(),
            dir.path.display(),
            dir.whose(),
            move_advice(path, real, role, dest)
        ));
    }
    let whys: Vec<String> = bad
        .iter()
        .map(|(s, why)| {
            if s.is_dir {
                format!("{}: {why}", s.path.display())
            } else {
                why.clone()
            }
        })
        .collect();
    let paths: Vec<String> = bad.iter().map(|(s, _)| sh(&s.path)).collect();
    let paths = paths.join(" ");
    Some(format!(
        "{} cannot be trusted: {}. {RULE}: sudo chown root: {paths} && sudo chmod go-w {paths}",
        path.display(),
        whys.join("; ")
    ))
}

/// The command that copies the file into root's tree, and the line of the
/// profile that must then name the copy.
fn move_advice(path: &Path, real: &Path, role: Role<'_>, dest: &Path) -> String {
    let mode = match role {
        Role::Profile => "644",
        Role::Field { .. } => "600",
    };
    // Named through a link in a user's directory, the file may already be
    // where it belongs: then only the profile's line changes.
    let copy = if real == dest {
        "name the file the link points to (it is in root's tree already)".to_string()
    } else {
        format!(
            "copy the file into root's tree: sudo install -D -o root -g root -m {mode} {} {}",
            sh(real),
            sh(dest)
        )
    };
    match role {
        Role::Field { profile, field } if path != dest => {
            let (section, key) = field.rsplit_once('.').unwrap_or(("", field));
            let under = if section.is_empty() {
                String::new()
            } else {
                format!(" under [{section}]")
            };
            let then = if real == dest { ":" } else { ", then" };
            format!(
                "{copy}{then} set `{key} = {:?}`{under} in {}",
                dest.display().to_string(),
                profile.display()
            )
        }
        _ => copy,
    }
}

/// A path as a shell word: as is when it is plain, else in single quotes.
fn sh(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Warns when a file holding keys or passwords can be read by others.
pub fn warn_if_exposed(path: &Path, what: &str) {
    if let Ok(m) = std::fs::metadata(path)
        && m.mode() & 0o077 != 0
    {
        eprintln!(
            "nsvpn: warning: {what}: {} holds secrets but is accessible by group or others \
             (mode {:04o}): chmod 600 {}",
            path.display(),
            m.mode() & 0o7777,
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: u32 = 1000;

    /// A chain from `path` up to `/`: each entry is (path, uid, mode); a
    /// mode with the directory bit is a directory. alice's home is
    /// /home/alice, bob's /home/bob.
    fn chain(entries: &[(&str, u32, u32)]) -> Vec<Seen> {
        entries
            .iter()
            .map(|&(p, uid, mode)| Seen {
                path: p.into(),
                uid,
                mode,
                is_dir: mode & 0o40000 != 0,
                owner: match uid {
                    0 => None,
                    ALICE => Some(("alice".into(), "/home/alice".into())),
                    _ => Some(("bob".into(), "/home/bob".into())),
                },
            })
            .collect()
    }

    const ROOT: (&str, u32, u32) = ("/", 0, 0o40755);
    const HOME: (&str, u32, u32) = ("/home", 0, 0o40755);
    const ALICES: (&str, u32, u32) = ("/home/alice", ALICE, 0o40700);
    const ETC: (&str, u32, u32) = ("/etc", 0, 0o40755);
    const ETC_NSVPN: (&str, u32, u32) = ("/etc/nsvpn", 0, 0o40755);

    fn config() -> Role<'static> {
        Role::Field {
            profile: Path::new("/etc/nsvpn/profiles/x.toml"),
            field: "vpn.config",
        }
    }

    /// Each case: where the file is, what is wrong, the advice. A file in a
    /// user's directory (or one everyone may write) is copied into root's
    /// tree and the profile's line changed; chown/chmod only for what is
    /// already in root's tree.
    #[test]
    fn the_advice_fits_where_the_file_is() {
        let downloads = chain(&[
            ("/home/alice/Downloads/x.conf", ALICE, 0o100644),
            ("/home/alice/Downloads", ALICE, 0o40755),
            ALICES,
            HOME,
            ROOT,
        ]);
        let cases: Vec<(&str, &str, Vec<Seen>, Role, &str)> = vec![
            (
                "a sudo user's download",
                "/home/alice/Downloads/x.conf",
                downloads.clone(),
                config(),
                "/etc/nsvpn/x.conf",
            ),
            (
                "root's copy, still in alice's home",
                "/home/alice/x.conf",
                chain(&[("/home/alice/x.conf", 0, 0o100600), ALICES, HOME, ROOT]),
                Role::Field {
                    profile: Path::new("/etc/nsvpn/profiles/x.toml"),
                    field: "vpn.auth_file",
                },
                "/etc/nsvpn/x.conf",
            ),
            (
                "a name with spaces, and another profile's file has the plain name",
                "/home/alice/Downloads/My VPN (1).conf",
                chain(&[
                    ("/home/alice/Downloads/My VPN (1).conf", ALICE, 0o100644),
                    ("/home/alice/Downloads", ALICE, 0o40755),
                    ALICES,
                    HOME,
                    ROOT,
                ]),
                config(),
                "/etc/nsvpn/x-My VPN (1).conf",
            ),
            (
                "in /tmp",
                "/tmp/x.conf",
                chain(&[("/tmp/x.conf", ALICE, 0o100644), ("/tmp", 0, 0o41777), ROOT]),
                config(),
                "/etc/nsvpn/x.conf",
            ),
            (
                "a profile linked to a user's file",
                "/etc/nsvpn/profiles/x.toml",
                chain(&[
                    ("/home/alice/x.toml", ALICE, 0o100644),
                    ALICES,
                    HOME,
                    ROOT,
                    ("/etc/nsvpn/profiles", 0, 0o40755),
                    ETC_NSVPN,
                    ETC,
                    ROOT,
                ]),
                Role::Profile,
                "/etc/nsvpn/profiles/x.toml",
            ),
            (
                "named through a link in a user's directory, already in root's tree",
                "/home/alice/x.conf",
                chain(&[
                    ("/etc/nsvpn/x.conf", 0, 0o100600),
                    ETC_NSVPN,
                    ETC,
                    ROOT,
                    ALICES,
                    HOME,
                    ROOT,
                ]),
                config(),
                "/etc/nsvpn/x.conf",
            ),
            (
                "group-writable, in /etc/nsvpn",
                "/etc/nsvpn/x.conf",
                chain(&[("/etc/nsvpn/x.conf", 0, 0o100664), ETC_NSVPN, ETC, ROOT]),
                config(),
                "/etc/nsvpn/x.conf",
            ),
            (
                "alice's, in /etc/nsvpn",
                "/etc/nsvpn/x.conf",
                chain(&[("/etc/nsvpn/x.conf", ALICE, 0o100600), ETC_NSVPN, ETC, ROOT]),
                config(),
                "/etc/nsvpn/x.conf",
            ),
            (
                "a group-writable profile directory and profile",
                "/etc/nsvpn/profiles/x.toml",
                chain(&[
                    ("/etc/nsvpn/profiles/x.toml", 0, 0o100664),
                    ("/etc/nsvpn/profiles", 0, 0o42775),
                    ETC_NSVPN,
                    ETC,
                    ROOT,
                ]),
                Role::Profile,
                "/etc/nsvpn/profiles/x.toml",
            ),
            (
                "a directory bob owns, outside his home",
                "/srv/vpn/x.conf",
                chain(&[
                    ("/srv/vpn/x.conf", 0, 0o100600),
                    ("/srv/vpn", 1001, 0o40755),
                    ("/srv", 0, 0o40755),
                    ROOT,
                ]),
                config(),
                "/etc/nsvpn/x.conf",
            ),
        ];
        let mut out = Vec::new();
        for (name, path, seen, role, dest) in cases {
            let real = seen[0].path.clone();
            let why = verdict(Path::new(path), &real, &seen, role, Path::new(dest))
                .unwrap_or_else(|| panic!("{name}: trusted"));
            out.push(format!("{name}:\n  {why}"));
        }
        insta::assert_snapshot!(out.join("\n"));

        // Following the advice never ends at a user's home made root's.
        let why = verdict(
            Path::new("/home/alice/Downloads/x.conf"),
            Path::new("/home/alice/Downloads/x.conf"),
            &downloads,
            config(),
            Path::new("/etc/nsvpn/x.conf"),
        )
        .unwrap();
        assert!(!why.contains("chown") && !why.contains("chmod"), "{why}");

        let fine = chain(&[("/etc/nsvpn/x.conf", 0, 0o100600), ETC_NSVPN, ETC, ROOT]);
        let p = Path::new("/etc/nsvpn/x.conf");
        assert!(verdict(p, p, &fine, config(), p).is_none());
    }

    #[test]
    fn shell_words() {
        assert_eq!(sh(Path::new("/etc/nsvpn/x.conf")), "/etc/nsvpn/x.conf");
        assert_eq!(sh(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }

    #[test]
    fn owner_and_mode_rules() {
        assert_eq!(problem(0, 0o100644, false), None);
        assert_eq!(problem(0, 0o40755, true), None);
        assert_eq!(problem(0, 0o100600, false), None);
        insta::assert_snapshot!(problem(1000, 0o100644, false).unwrap(), @"the file is owned by uid 1000, not root");
        insta::assert_snapshot!(problem(0, 0o100664, false).unwrap(), @"the file is writable by its group (mode 0664)");
        insta::assert_snapshot!(problem(0, 0o41777, true).unwrap(), @"the directory is writable by group and others (mode 1777)");
        insta::assert_snapshot!(problem(0, 0o100646, false).unwrap(), @"the file is writable by others (mode 0646)");
    }
}
