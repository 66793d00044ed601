//! The desktop sockets a program inside a profile needs, and which of them
//! cross a network namespace. Unix sockets on a path do (the mount
//! namespace is the host's); abstract unix sockets and TCP do not (they
//! belong to the network namespace they were made in). So inside:
//!
//! - X11 works through `/tmp/.X11-unix/X<n>` (libxcb falls back to it when
//!   the abstract `@/tmp/.X11-unix/X<n>` is not there), with `XAUTHORITY`
//!   (or `~/.Xauthority`); a display that has only the abstract socket, or
//!   a TCP display (`localhost:10`, as `ssh -X` gives), gets a warning;
//! - Wayland, PipeWire and PulseAudio: their sockets in `XDG_RUNTIME_DIR`;
//! - the session bus when `DBUS_SESSION_BUS_ADDRESS` names a path; one that
//!   is abstract only gets a warning.
//!
//! sudo's default policy keeps `DISPLAY` and `XAUTHORITY` but drops
//! `XDG_RUNTIME_DIR`, `WAYLAND_DISPLAY` and `DBUS_SESSION_BUS_ADDRESS`; for
//! a user's command nsvpn sets what the user's session would have where it
//! is missing: `XDG_RUNTIME_DIR=/run/user/<uid>` (the user's own directory,
//! as pam_systemd sets it), `WAYLAND_DISPLAY=wayland-0` and
//! `DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus` when those
//! sockets exist. What the caller's environment has (`sudo -E`, or a
//! sudoers `env_keep`) is kept as it is. Root's own command keeps root's
//! environment whole and gets nothing added.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What the desktop variables need to know of the file system.
pub trait Fs {
    fn is_socket(&self, path: &Path) -> bool;
    /// A directory owned by `uid`.
    fn is_dir_of(&self, path: &Path, uid: u32) -> bool;
}

/// The real file system.
pub struct RealFs;

impl Fs for RealFs {
    fn is_socket(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
    }
    fn is_dir_of(&self, path: &Path, uid: u32) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == uid)
    }
}

/// The variables to add to a user's command, and the warnings to print.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Desktop {
    pub added: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

fn get<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// For a command of user `uid` (not root) with the caller's environment
/// `vars`: what to add, and what will not work inside.
pub fn complete(vars: &[(String, String)], uid: u32, fs: &impl Fs) -> Desktop {
    let mut d = Desktop::default();
    let runtime = match get(vars, "XDG_RUNTIME_DIR") {
        Some(r) => Some(r.to_string()),
        None => {
            let own = format!("/run/user/{uid}");
            fs.is_dir_of(Path::new(&own), uid).then(|| {
                d.added.push(("XDG_RUNTIME_DIR".into(), own.clone()));
                own
            })
        }
    };
    if let Some(run) = &runtime {
        let run = Path::new(run);
        if get(vars, "WAYLAND_DISPLAY").is_none() && fs.is_socket(&run.join("wayland-0")) {
            d.added.push(("WAYLAND_DISPLAY".into(), "wayland-0".into()));
        }
        if get(vars, "DBUS_SESSION_BUS_ADDRESS").is_none() && fs.is_socket(&run.join("bus")) {
            d.added.push((
                "DBUS_SESSION_BUS_ADDRESS".into(),
                format!("unix:path={}", run.join("bus").display()),
            ));
        }
    }
    if let Some(display) = get(vars, "DISPLAY") {
        d.warnings.extend(display_warning(display, fs));
    }
    if let Some(bus) = get(vars, "DBUS_SESSION_BUS_ADDRESS") {
        d.warnings.extend(bus_warning(bus));
    }
    d
}

/// Why an X display will not open inside, if it will not.
fn display_warning(display: &str, fs: &impl Fs) -> Option<String> {
    // [host]:number[.screen]; "unix" and no host are the local sockets.
    let (host, rest) = display.rsplit_once(':')?;
    let number = rest.split('.').next().unwrap_or_default();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if host.is_empty() || host == "unix" {
        let path = format!("/tmp/.X11-unix/X{number}");
        if fs.is_socket(Path::new(&path)) {
            return None;
        }
        return Some(format!(
            "DISPLAY={display}: the X server has no socket {path}, only the abstract one, \
             which stays in the host's network namespace: X programs inside cannot open the \
             display. Start the X server with its path socket (no `-nolisten unix`)"
        ));
    }
    if host.starts_with('/') {
        // A launchd-style path display: a path socket, fine.
        return None;
    }
    Some(format!(
        "DISPLAY={display} is a TCP display on the host's network (as `ssh -X` gives), which \
         programs inside do not reach: X programs inside cannot open it. Use a local display \
         (/tmp/.X11-unix), e.g. run nsvpn on the machine that shows the desktop"
    ))
}

/// Why the session bus will not answer inside, if it will not: only an
/// address with a `unix:path=` entry crosses the namespace.
fn bus_warning(address: &str) -> Option<String> {
    let entries: Vec<&str> = address.split(';').filter(|e| !e.is_empty()).collect();
    let path = entries
        .iter()
        .any(|e| e.starts_with("unix:") && e[5..].split(',').any(|kv| kv.starts_with("path=")));
    let abstract_ = entries
        .iter()
        .any(|e| e.starts_with("unix:") && e[5..].split(',').any(|kv| kv.starts_with("abstract=")));
    (abstract_ && !path).then(|| {
        format!(
            "the session bus (DBUS_SESSION_BUS_ADDRESS={address}) is an abstract socket, which \
             stays in the host's network namespace: programs inside cannot reach it \
             (notifications, keyrings, file pickers and single-instance hand-overs fail or \
             start anew). A session bus on a path works: systemd's user bus \
             (unix:path=/run/user/<uid>/bus), or `dbus-daemon --session \
             --address=unix:path=...`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    #[derive(Default)]
    struct FakeFs {
        sockets: BTreeSet<PathBuf>,
        dirs: Vec<(PathBuf, u32)>,
    }

    impl Fs for FakeFs {
        fn is_socket(&self, p: &Path) -> bool {
            self.sockets.contains(p)
        }
        fn is_dir_of(&self, p: &Path, uid: u32) -> bool {
            self.dirs.iter().any(|(d, u)| d == p && *u == uid)
        }
    }

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn session() -> FakeFs {
        FakeFs {
            sockets: [
                "/run/user/1000/wayland-0",
                "/run/user/1000/bus",
                "/tmp/.X11-unix/X0",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            dirs: vec![("/run/user/1000".into(), 1000)],
        }
    }

    /// Under plain sudo: DISPLAY and XAUTHORITY came through, the rest is
    /// set from the user's runtime directory.
    #[test]
    fn under_sudo_the_session_sockets_are_found() {
        let d = complete(
            &vars(&[("DISPLAY", ":0"), ("XAUTHORITY", "/home/alice/.Xauthority")]),
            1000,
            &session(),
        );
        insta::assert_debug_snapshot!(d);
    }

    /// What the caller has is kept (sudo -E); nothing is guessed over it,
    /// and a runtime directory of someone else is not taken.
    #[test]
    fn what_the_caller_has_wins_and_nothing_of_others_is_taken() {
        let d = complete(
            &vars(&[
                ("XDG_RUNTIME_DIR", "/run/user/1000"),
                ("WAYLAND_DISPLAY", "wayland-1"),
                ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ]),
            1000,
            &session(),
        );
        assert_eq!(d, Desktop::default());
        let d = complete(&[], 1001, &session());
        assert_eq!(d, Desktop::default());
        let d = complete(&[], 1000, &FakeFs::default());
        assert_eq!(d, Desktop::default());
    }

    #[test]
    fn displays_and_buses_that_do_not_cross_a_namespace_are_warned_of() {
        let fs = session();
        let none = |v: &[(&str, &str)]| {
            assert!(complete(&vars(v), 1000, &fs).warnings.is_empty(), "{v:?}")
        };
        none(&[("DISPLAY", ":0")]);
        none(&[("DISPLAY", ":0.0")]);
        none(&[("DISPLAY", "unix:0")]);
        none(&[("DISPLAY", "/private/tmp/com.apple.launchd.x/org.xquartz:0")]);
        none(&[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:abstract=/tmp/dbus-x,guid=1;unix:path=/run/user/1000/bus",
        )]);
        none(&[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/b,guid=1")]);
        let warned: Vec<String> = [
            ("DISPLAY", ":1"),
            ("DISPLAY", "localhost:10.0"),
            (
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:abstract=/tmp/dbus-Xa1,guid=3f",
            ),
        ]
        .iter()
        .flat_map(|(k, v)| complete(&vars(&[(k, v)]), 1000, &fs).warnings)
        .collect();
        insta::assert_snapshot!(warned.join("\n"));
    }
}
