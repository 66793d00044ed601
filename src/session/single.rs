//! Single-instance programs. Firefox, Chromium and Chrome, VS Code and
//! Thunderbird started while an instance of theirs already runs for the
//! same user hand the request (a URL, a file) to that instance and exit: if
//! it runs outside the profile, the page opens with the host's network.
//! Before exec, when the command is one of them, nsvpn looks for such an
//! instance (same user, another network namespace) and warns, showing the
//! flags that start a separate instance. Any other command costs one look
//! at a short list (and at the administrator's file, below): /proc is read
//! only for a program on the list.
//!
//! The administrator extends the list in `/etc/nsvpn/single-instance`: one
//! program a line, its name (the command's and the process's) and then the
//! flags that start a separate instance; `#` starts a comment:
//!
//! ```text
//! slack   --user-data-dir=DIR
//! ```

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The administrator's list.
pub const LIST_FILE: &str = "/etc/nsvpn/single-instance";

/// A program that hands requests to a running instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// What the user calls it.
    pub name: String,
    /// The names its main process has (`/proc/<pid>/comm`).
    pub processes: Vec<String>,
    /// The flags that start a separate instance.
    pub separate: String,
    /// Arguments that already ask for one (then there is nothing to warn of).
    pub own_flags: Vec<String>,
}

/// A built-in entry: (command names, process names, flags for a separate
/// instance, other flags that also give one).
type Entry = (
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
);

const BUILT_IN: &[Entry] = &[
    (
        &["firefox", "firefox-esr", "firefox-bin"],
        &["firefox", "firefox-esr", "firefox-bin"],
        "--new-instance --profile DIR",
        &[
            "-new-instance",
            "--no-remote",
            "-no-remote",
            "-profile",
            "-P",
        ],
    ),
    (
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
            "google-chrome-beta",
            "chrome",
        ],
        &["chromium", "chrome"],
        "--user-data-dir=DIR",
        &[],
    ),
    (
        &["code", "code-insiders", "codium"],
        &["code", "code-insiders", "codium"],
        "--user-data-dir=DIR",
        &[],
    ),
    (
        &["thunderbird"],
        &["thunderbird", "thunderbird-bin"],
        "--new-instance --profile DIR",
        &[
            "-new-instance",
            "--no-remote",
            "-no-remote",
            "-profile",
            "-P",
        ],
    ),
];

/// The flags of a `separate` text (words that start with `-`, without a
/// `=value`).
fn flags_of(separate: &str) -> impl Iterator<Item = String> + '_ {
    separate
        .split_whitespace()
        .filter(|w| w.starts_with('-'))
        .map(|w| w.split('=').next().unwrap_or(w).to_string())
}

fn built_in(command: &str) -> Option<Program> {
    let (_, processes, separate, extra) = BUILT_IN.iter().find(|(c, ..)| c.contains(&command))?;
    Some(Program {
        name: command.to_string(),
        processes: processes.iter().map(|p| p.to_string()).collect(),
        separate: separate.to_string(),
        own_flags: flags_of(separate)
            .chain(extra.iter().map(|f| f.to_string()))
            .collect(),
    })
}

/// The program `command` is in the administrator's list `text`.
pub fn in_list(text: &str, command: &str) -> Option<Program> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .find_map(|l| {
            let (name, separate) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (name == command).then(|| Program {
                name: name.to_string(),
                processes: vec![name.chars().take(15).collect()],
                separate: separate.trim().to_string(),
                own_flags: flags_of(separate).collect(),
            })
        })
}

/// The program `argv` runs, if it is a single-instance one and the
/// arguments do not already ask for a separate instance.
pub fn lookup(argv: &[&str], list: impl FnOnce() -> Option<String>) -> Option<Program> {
    let command = Path::new(argv.first()?).file_name()?.to_str()?;
    let program = built_in(command).or_else(|| in_list(&list()?, command))?;
    let asks = |a: &str| {
        let flag = a.split('=').next().unwrap_or(a);
        program.own_flags.iter().any(|f| f == flag)
    };
    (!argv[1..].iter().any(|a| asks(a))).then_some(program)
}

/// A running process of `program` for `uid` whose network namespace is not
/// `inside` (the profile's: device, inode).
pub fn running_outside(program: &Program, uid: u32, inside: (u64, u64)) -> Option<u32> {
    crate::util::other_pids().find(|pid| {
        let dir = format!("/proc/{pid}");
        std::fs::metadata(&dir).is_ok_and(|m| m.uid() == uid)
            && std::fs::read_to_string(format!("{dir}/comm"))
                .is_ok_and(|c| program.processes.iter().any(|p| p == c.trim_end()))
            && std::fs::metadata(format!("{dir}/ns/net"))
                .is_ok_and(|m| (m.dev(), m.ino()) != inside)
    })
}

/// The warning.
pub fn warning(program: &Program, pid: u32, user: &str, profile: &str) -> String {
    let mut s = format!(
        "{name} already runs for {user} outside profile {profile} (pid {pid}): {name} may hand \
         this request to that instance and exit, and the instance would use the host's \
         network, not the profile's.",
        name = program.name
    );
    if !program.separate.is_empty() {
        s.push_str(&format!(
            " To start a separate instance inside the profile: nsvpn exec {profile} -- {} {} \
             (DIR: a directory of its own for this profile)",
            program.name, program.separate
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_list() -> Option<String> {
        None
    }

    #[test]
    fn known_programs_and_what_asks_for_a_separate_instance() {
        for argv in [
            &["firefox", "https://intranet"][..],
            &["/usr/bin/firefox-esr"],
            &["chromium", "--incognito"],
            &["google-chrome"],
            &["code", "."],
            &["thunderbird"],
        ] {
            assert!(lookup(argv, no_list).is_some(), "{argv:?}");
        }
        for argv in [
            &["psql", "-h", "db"][..],
            &["firefox", "--new-instance", "--profile", "/tmp/p"],
            &["firefox", "-no-remote"],
            &["chromium", "--user-data-dir=/tmp/c"],
            &["code", "--user-data-dir", "/tmp/c"],
            &["thunderbird", "-P", "work"],
            &[],
        ] {
            assert!(lookup(argv, no_list).is_none(), "{argv:?}");
        }
    }

    /// The administrator's file is read only for a command not built in.
    #[test]
    fn the_administrators_list() {
        let text = "# programs that keep one instance\nslack   --user-data-dir=DIR\n\nobsidian\n";
        let p = lookup(&["slack"], || Some(text.into())).unwrap();
        assert_eq!(p.processes, ["slack"]);
        assert_eq!(p.own_flags, ["--user-data-dir"]);
        assert!(lookup(&["slack", "--user-data-dir=/x"], || Some(text.into())).is_none());
        assert_eq!(
            lookup(&["obsidian"], || Some(text.into()))
                .unwrap()
                .separate,
            ""
        );
        assert!(lookup(&["firefox"], || panic!("read for a built-in")).is_some());
        assert!(lookup(&["psql"], || Some(text.into())).is_none());
    }

    #[test]
    fn warnings() {
        let firefox = lookup(&["firefox"], no_list).unwrap();
        let code = lookup(&["code"], no_list).unwrap();
        let plain = in_list("obsidian", "obsidian").unwrap();
        insta::assert_snapshot!(
            [
                warning(&firefox, 4242, "alice", "acme"),
                warning(&code, 77, "alice", "acme"),
                warning(&plain, 5, "bob", "corp"),
            ]
            .join("\n")
        );
    }
}
