//! Which files nsvpn believes. When it acts for someone other than root
//! (through sudo, or as a file-capability binary), a profile and every file
//! it names must be owned by root and writable by root alone, and so must
//! every directory above them: otherwise the user could have written what
//! nsvpn is about to run as root. Secrets readable by others get a warning,
//! as wg-quick gives one.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

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

/// Checks `path` (`what` names it in the error, e.g. `profile "corp"
/// (...): field vpn.config`), when nsvpn acts for a non-root user.
pub fn check(path: &Path, what: &str) -> Result<()> {
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
    for p in chain {
        let m = std::fs::metadata(p)
            .with_context(|| format!("{what}: cannot inspect {}", p.display()))?;
        if let Some(why) = problem(m.uid(), m.mode(), m.is_dir()) {
            bail!(
                "{what}: {} cannot be trusted: {why}. When nsvpn acts for a user other than root \
                 it reads only files that root owns and alone may write, in directories the same: \
                 chown root: {p} && chmod go-w {p}",
                path.display(),
                p = p.display()
            );
        }
    }
    Ok(())
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
