//! Running a command inside a profile's namespace, as `ip netns exec` does,
//! then dropping to the invoking user. The order is fixed and small:
//!
//! 1. the target user is resolved first (by the caller: NSS may need the
//!    host's sockets);
//! 2. `setns` into the network namespace;
//! 3. `unshare(CLONE_NEWNS)` and make `/` recursively slave, so that nothing
//!    mounted here propagates back to the host;
//! 4. remount `/sys` so that `/sys/class/net` shows the namespace's devices;
//! 5. hide the host's resolver sockets (nscd, systemd-resolved, avahi) under
//!    empty read-only tmpfs mounts: they answer from the host's network
//!    whatever the namespace is;
//! 6. mount a read-only overlay on `/etc` whose top layer holds the files of
//!    `/etc/netns/<ns>/` (resolv.conf, hosts, nsswitch.conf). Unlike a bind
//!    over `/etc/resolv.conf`, which the kernel detaches when the host renames
//!    a new file over it (NetworkManager, resolvconf and systemd-resolved all
//!    do), nothing the host does to its `/etc` can replace these files, so a
//!    long-lived shell keeps the profile's DNS. Mounts below `/etc` are
//!    carried over. If the overlay cannot be made, each file is bound over
//!    its twin instead, with a warning. For `nsvpn shell` under bash or zsh
//!    the top layer also holds `/etc/nsvpn-shell/`, the rc files that show
//!    the profile in the prompt (see `shellrc.rs`); without the overlay the
//!    shell runs without them;
//! 7. drop: groups, gid, uid, every capability set but the bounding set,
//!    then `no_new_privs` (a root target keeps root's powers);
//! 8. signals as the command expects them: SIGPIPE's default action back
//!    (Rust's runtime ignores SIGPIPE in nsvpn, and an ignored signal stays
//!    ignored across `execve`: `nsvpn exec p -- yes | head -1` would never
//!    end); and, after an automatic `up` only (which blocks SIGINT, SIGTERM
//!    and SIGHUP to read them itself), the caller's signal mask: a mask
//!    survives `execve`, and the command must see Ctrl-C. A signal that
//!    arrived since `up` finished ends nsvpn here, before the command;
//! 9. `execvp`.
//!
//! All of it runs single-threaded, with no async runtime. The system calls go
//! through the [`Sys`] trait so the order can be checked without root.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::SigSet;
use nix::unistd::{Gid, Uid};

use crate::shellrc::Prompt;
use crate::user::Target;

/// Exit status for nsvpn's own failures, as `env` and `nsenter` use.
pub const EXIT_NSVPN_ERROR: i32 = 125;
/// The command was found but could not be run.
pub const EXIT_CANNOT_RUN: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// The system calls of the exec path.
pub trait Sys {
    fn setns_net(&mut self, ns: BorrowedFd<'_>) -> Result<()>;
    fn unshare_mount_ns(&mut self) -> Result<()>;
    fn make_root_rslave(&mut self) -> Result<()>;
    fn remount_sys(&mut self, source: &str) -> Result<()>;
    fn bind(&mut self, src: &Path, dst: &Path) -> Result<()>;
    /// An empty read-only tmpfs over `dir`.
    fn hide(&mut self, dir: &Path) -> Result<()>;
    /// A read-only overlay on `/etc` with `files` (all in `layer`) on top,
    /// and `extra` (paths relative to `/etc`, contents) there too; the top
    /// layers are kept in `kept` (see `overlay.rs`).
    fn overlay_etc(
        &mut self,
        layer: &Path,
        kept: &Path,
        files: &[PathBuf],
        extra: &[(PathBuf, String)],
    ) -> Result<()>;
    fn warn(&mut self, message: &str);
    fn setgroups(&mut self, groups: &[Gid]) -> Result<()>;
    fn setresgid(&mut self, gid: Gid) -> Result<()>;
    fn setresuid(&mut self, uid: Uid) -> Result<()>;
    fn clear_capabilities(&mut self) -> Result<()>;
    fn set_no_new_privs(&mut self) -> Result<()>;
    /// SIGPIPE's action back to the default (Rust's runtime ignores it).
    fn default_sigpipe(&mut self) -> Result<()>;
    fn set_signal_mask(&mut self, mask: &SigSet) -> Result<()>;
    /// Only returns on failure.
    fn execvp(&mut self, argv: &[CString], env: &[CString]) -> Errno;
}

/// Everything `run` needs, prepared before any privileged step.
pub struct Plan<'a> {
    pub netns: &'a str,
    pub ns: BorrowedFd<'a>,
    /// The profile's own `/etc` files.
    pub etc: EtcFiles,
    /// Directories of host resolver sockets to hide.
    pub hidden: Vec<PathBuf>,
    pub target: Target,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// For `nsvpn shell` under bash or zsh: the rc files that show the
    /// profile in the prompt, laid in the overlay, and the command line and
    /// environment that use them (instead of `argv` and `env`, which run
    /// when the overlay cannot be made).
    pub prompt: Option<Prompt>,
    /// The caller's signal mask, to give back last; `Some` only when this
    /// exec brought the profile up (and so blocked the stop signals).
    pub signal_mask: Option<SigSet>,
}

impl Plan<'_> {
    /// What to run: the shell with its prompt files if `/etc` got them.
    fn command(&self, overlaid: bool) -> (&[CString], &[CString]) {
        match &self.prompt {
            Some(p) if overlaid => (&p.argv, &p.env),
            _ => (&self.argv, &self.env),
        }
    }
}

/// Why exec did not happen: nsvpn's error, or the command's.
#[derive(Debug)]
pub enum ExecFailure {
    Setup(anyhow::Error),
    Command { program: String, errno: Errno },
}

impl ExecFailure {
    /// The line nsvpn prints: with the `error:` prefix of every command.
    pub fn message(&self) -> String {
        format!("nsvpn: error: {self}")
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            ExecFailure::Setup(_) => EXIT_NSVPN_ERROR,
            ExecFailure::Command {
                errno: Errno::ENOENT,
                ..
            } => EXIT_NOT_FOUND,
            ExecFailure::Command { .. } => EXIT_CANNOT_RUN,
        }
    }
}

impl std::fmt::Display for ExecFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecFailure::Setup(e) => write!(f, "{e:#}"),
            ExecFailure::Command {
                program,
                errno: Errno::ENOENT,
            } => {
                write!(f, "{program}: command not found")
            }
            ExecFailure::Command { program, errno } => {
                write!(f, "cannot run {program}: {}", errno.desc())
            }
        }
    }
}

/// A profile's own `/etc` files, which an exec lays over `/etc`.
pub struct EtcFiles {
    /// `/etc/netns/<ns>/`, the top layer of `/etc`.
    pub layer: PathBuf,
    /// (file in it, its `/etc` twin): the overlay's top layer, or, if the
    /// overlay fails, what is bound.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// `/run/nsvpn/<p>/`, where the top layer is kept between execs.
    pub kept: PathBuf,
}

impl EtcFiles {
    pub fn of(profile: &str, netns: &str) -> EtcFiles {
        EtcFiles {
            layer: crate::paths::netns_etc(netns),
            binds: binds_for(netns),
            kept: crate::paths::profile_dir(profile),
        }
    }
}

/// The binds for a namespace: every regular file in /etc/netns/<ns>/.
pub fn binds_for(netns: &str) -> Vec<(PathBuf, PathBuf)> {
    let dir = crate::paths::netns_etc(netns);
    let mut out: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| (e.path(), Path::new("/etc").join(e.file_name())))
        .collect();
    out.sort();
    out
}

/// Where the host's resolvers listen on unix sockets, which ignore network
/// namespaces: nscd (glibc asks it before any NSS module), systemd-resolved
/// (nss-resolve, resolvectl) and avahi (nss-mdns).
pub const RESOLVER_SOCKET_DIRS: [&str; 6] = [
    "/run/nscd",
    "/var/run/nscd",
    "/run/systemd/resolve",
    "/var/run/systemd/resolve",
    "/run/avahi-daemon",
    "/var/run/avahi-daemon",
];

/// Those of [`RESOLVER_SOCKET_DIRS`] that exist here, each once (`/var/run`
/// is usually a link to `/run`).
pub fn hidden_dirs() -> Vec<PathBuf> {
    // One stat each; only a directory that exists is resolved (most
    // machines have one or none of them).
    let mut out: Vec<PathBuf> = RESOLVER_SOCKET_DIRS
        .iter()
        .filter(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Runs the plan. Returns only if something failed.
pub fn run<S: Sys>(sys: &mut S, plan: &Plan<'_>) -> ExecFailure {
    let overlaid = match enter_and_drop(sys, plan) {
        Ok(overlaid) => overlaid,
        Err(e) => return ExecFailure::Setup(e),
    };
    let (argv, env) = plan.command(overlaid);
    let errno = sys.execvp(argv, env);
    ExecFailure::Command {
        program: argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default(),
        errno,
    }
}

/// Steps 2 to 8. Returns whether `/etc` is the overlay (else its files are
/// bound).
fn enter_and_drop<S: Sys>(sys: &mut S, plan: &Plan<'_>) -> Result<bool> {
    sys.setns_net(plan.ns)
        .with_context(|| format!("cannot enter network namespace {}", plan.netns))?;
    private_mounts(sys)?;
    sys.remount_sys(plan.netns)
        .context("cannot remount /sys for the namespace")?;
    let extra = plan.prompt.as_ref().map_or(&[][..], |p| &p.files[..]);
    let undone = if plan.prompt.is_some() {
        "for this command, and the shell's prompt will not show the profile"
    } else {
        "for this command"
    };
    let overlaid = resolver_files(sys, &plan.hidden, &plan.etc, extra, undone)?;
    drop_to(sys, &plan.target)?;
    sys.default_sigpipe()
        .context("cannot give the command SIGPIPE's default action")?;
    if let Some(mask) = &plan.signal_mask {
        sys.set_signal_mask(mask)
            .context("cannot give the command the caller's signal mask")?;
    }
    Ok(overlaid)
}

/// Step 3: a private mount namespace whose mounts never propagate back to
/// the host. Shared with `nsvpn forward` (see `forward.rs`).
pub fn private_mounts<S: Sys>(sys: &mut S) -> Result<()> {
    sys.unshare_mount_ns()
        .context("cannot create a private mount namespace")?;
    sys.make_root_rslave()
        .context("cannot make / a slave mount")
}

/// Steps 5 and 6, in a private mount namespace: the host's resolver sockets
/// hidden, and the profile's own `etc` files over `/etc`, as an overlay or
/// else each bound over its twin, with a warning that ends with
/// `undone` (what the host renaming `/etc/resolv.conf` would then undo).
/// Returns whether `/etc` is the overlay.
pub fn resolver_files<S: Sys>(
    sys: &mut S,
    hidden: &[PathBuf],
    etc: &EtcFiles,
    extra: &[(PathBuf, String)],
    undone: &str,
) -> Result<bool> {
    for dir in hidden {
        sys.hide(dir)
            .with_context(|| format!("cannot hide {}", dir.display()))?;
    }
    let files: Vec<PathBuf> = etc.binds.iter().map(|(src, _)| src.clone()).collect();
    let overlaid = sys.overlay_etc(&etc.layer, &etc.kept, &files, extra);
    if let Err(e) = &overlaid {
        sys.warn(&format!(
            "cannot lay {} over /etc ({e:#}); binding its files instead, which the host \
             replacing /etc/resolv.conf by rename would undo {undone}",
            etc.layer.display(),
        ));
        for (src, dst) in &etc.binds {
            sys.bind(src, dst)
                .with_context(|| format!("cannot bind {} over {}", src.display(), dst.display()))?;
        }
    }
    Ok(overlaid.is_ok())
}

/// Step 7: drop to `target` (groups, gid, uid, every capability set but the
/// bounding set, `no_new_privs`); a root target keeps root's powers.
pub fn drop_to<S: Sys>(sys: &mut S, t: &Target) -> Result<()> {
    if t.is_root() {
        return Ok(());
    }
    sys.setgroups(&t.groups)
        .context("cannot set the supplementary groups")?;
    sys.setresgid(t.gid)
        .with_context(|| format!("cannot switch to gid {}", t.gid))?;
    sys.setresuid(t.uid)
        .with_context(|| format!("cannot switch to uid {}", t.uid))?;
    sys.clear_capabilities()
        .context("cannot clear capabilities")?;
    sys.set_no_new_privs().context("cannot set no_new_privs")
}

/// Variables a user's command keeps from nsvpn's environment: the terminal,
/// the locale, the desktop's sockets (X11, Wayland, the runtime directory
/// with PipeWire's and PulseAudio's, the session bus; see
/// `session::desktop`), the agent socket, PATH. Everything else (sudo's
/// `SUDO_*`, `MAIL`, loader and library variables, whatever the privileged
/// side had) is dropped.
const KEPT: &[&str] = &[
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "PATH",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_TYPE",
    "XDG_CURRENT_DESKTOP",
    "DBUS_SESSION_BUS_ADDRESS",
    "PULSE_SERVER",
    "PIPEWIRE_REMOTE",
    "SSH_AUTH_SOCK",
];

/// PATH when nsvpn's environment has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn kept(key: &str) -> bool {
    KEPT.contains(&key) || key.starts_with("LC_")
}

/// The environment of the command. A user's command gets a clean one: the
/// variables in [`KEPT`], then HOME, USER, LOGNAME (and SHELL for a shell)
/// of the target user, and NSVPN_PROFILE. Root's own command keeps nsvpn's
/// whole environment, as under `ip netns exec`.
pub fn build_env(
    current: impl Iterator<Item = (String, String)>,
    target: &Target,
    profile: &str,
    shell: bool,
) -> Vec<CString> {
    let replaced = |k: &str| {
        matches!(k, "HOME" | "USER" | "LOGNAME" | "NSVPN_PROFILE") || (shell && k == "SHELL")
    };
    let mut vars: Vec<(String, String)> = current
        .filter(|(k, _)| !replaced(k) && (target.is_root() || kept(k)))
        .collect();
    if !vars.iter().any(|(k, _)| k == "PATH") {
        vars.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    vars.push(("HOME".into(), target.home.to_string_lossy().into_owned()));
    vars.push(("USER".into(), target.name.clone()));
    vars.push(("LOGNAME".into(), target.name.clone()));
    vars.push(("NSVPN_PROFILE".into(), profile.into()));
    if shell {
        vars.push(("SHELL".into(), target.shell.to_string_lossy().into_owned()));
    }
    vars.into_iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect()
}

/// The real system calls.
pub struct RealSys;

impl Sys for RealSys {
    fn setns_net(&mut self, ns: BorrowedFd<'_>) -> Result<()> {
        nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(Into::into)
    }
    fn unshare_mount_ns(&mut self) -> Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(Into::into)
    }
    fn make_root_rslave(&mut self) -> Result<()> {
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(Into::into)
    }
    fn remount_sys(&mut self, source: &str) -> Result<()> {
        let mut flags = MsFlags::empty();
        if let Ok(st) = nix::sys::statvfs::statvfs("/sys")
            && st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
        {
            flags |= MsFlags::MS_RDONLY;
        }
        // Nothing mounted on /sys is fine: a fresh sysfs goes there anyway.
        let _ = nix::mount::umount2("/sys", MntFlags::MNT_DETACH);
        nix::mount::mount(Some(source), "/sys", Some("sysfs"), flags, None::<&str>)
            .map_err(Into::into)
    }
    fn bind(&mut self, src: &Path, dst: &Path) -> Result<()> {
        nix::mount::mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(Into::into)
    }
    fn hide(&mut self, dir: &Path) -> Result<()> {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        nix::mount::mount(
            Some("nsvpn-hidden"),
            dir,
            Some("tmpfs"),
            flags,
            Some("size=4k,mode=0755"),
        )
        .map_err(Into::into)
    }
    fn overlay_etc(
        &mut self,
        layer: &Path,
        kept: &Path,
        files: &[PathBuf],
        extra: &[(PathBuf, String)],
    ) -> Result<()> {
        crate::overlay::mount_etc(layer, kept, files, extra)
    }
    fn warn(&mut self, message: &str) {
        eprintln!("nsvpn: warning: {message}");
    }
    fn setgroups(&mut self, groups: &[Gid]) -> Result<()> {
        // setgroups needs CAP_SETGID even to set the list in place; in
        // file-capability mode the process already has the user's groups.
        let set = |g: &[Gid]| {
            g.iter()
                .map(|g| g.as_raw())
                .collect::<std::collections::BTreeSet<u32>>()
        };
        if set(groups) == set(&nix::unistd::getgroups()?) {
            return Ok(());
        }
        nix::unistd::setgroups(groups).map_err(Into::into)
    }
    fn setresgid(&mut self, gid: Gid) -> Result<()> {
        nix::unistd::setresgid(gid, gid, gid).map_err(Into::into)
    }
    fn setresuid(&mut self, uid: Uid) -> Result<()> {
        nix::unistd::setresuid(uid, uid, uid).map_err(Into::into)
    }
    fn clear_capabilities(&mut self) -> Result<()> {
        use caps::CapSet;
        for set in [
            CapSet::Ambient,
            CapSet::Inheritable,
            CapSet::Effective,
            CapSet::Permitted,
        ] {
            caps::clear(None, set).map_err(|e| anyhow!("{set:?}: {e}"))?;
        }
        Ok(())
    }
    fn set_no_new_privs(&mut self) -> Result<()> {
        nix::sys::prctl::set_no_new_privs().map_err(Into::into)
    }
    fn default_sigpipe(&mut self) -> Result<()> {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: the default action, no handler of nsvpn's.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
            .map(drop)
            .map_err(Into::into)
    }
    fn set_signal_mask(&mut self, mask: &SigSet) -> Result<()> {
        mask.thread_set_mask().map_err(Into::into)
    }
    fn execvp(&mut self, argv: &[CString], env: &[CString]) -> Errno {
        let Some(prog) = argv.first() else {
            return Errno::EINVAL;
        };
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let mut last = Errno::ENOENT;
        for candidate in search_path(prog, &path) {
            let errno = match nix::unistd::execve(&candidate, argv, env) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            match errno {
                // Not here (or a directory on PATH the user may not search):
                // try the next directory, as a shell would.
                Errno::ENOENT | Errno::ENOTDIR => {}
                Errno::EACCES => {
                    if nix::unistd::access(candidate.as_c_str(), nix::unistd::AccessFlags::F_OK)
                        .is_ok()
                    {
                        last = Errno::EACCES;
                    }
                }
                other => return other,
            }
        }
        last
    }
}

/// The paths `execvp` would try for `prog`: itself if it has a '/', else
/// each directory of `path` (an empty entry is the current directory).
pub fn search_path(prog: &CString, path: &std::ffi::OsStr) -> Vec<CString> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = prog.as_bytes();
    if bytes.contains(&b'/') {
        return vec![prog.clone()];
    }
    path.as_bytes()
        .split(|b| *b == b':')
        .filter_map(|dir| {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(bytes);
            CString::new(full).ok()
        })
        .collect()
}

/// A recording [`Sys`] for unit tests (here and in `forward.rs`): it
/// records each call, and fails those whose record starts with one of
/// `fail_on`.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    #[derive(Default)]
    pub(crate) struct Recorder {
        pub calls: Vec<String>,
        pub fail_on: Vec<&'static str>,
        /// The environment execvp got.
        pub env: Vec<CString>,
    }

    impl Recorder {
        pub fn rec(&mut self, call: String) -> Result<()> {
            let fail = self.fail_on.iter().any(|f| call.starts_with(f));
            self.calls.push(call);
            if fail {
                Err(anyhow!("injected failure"))
            } else {
                Ok(())
            }
        }
    }

    impl Sys for Recorder {
        fn setns_net(&mut self, _: BorrowedFd<'_>) -> Result<()> {
            self.rec("setns(net)".into())
        }
        fn unshare_mount_ns(&mut self) -> Result<()> {
            self.rec("unshare(newns)".into())
        }
        fn make_root_rslave(&mut self) -> Result<()> {
            self.rec("mount(/, rslave)".into())
        }
        fn remount_sys(&mut self, source: &str) -> Result<()> {
            self.rec(format!("remount(/sys, {source})"))
        }
        fn bind(&mut self, src: &Path, dst: &Path) -> Result<()> {
            self.rec(format!("bind({}, {})", src.display(), dst.display()))
        }
        fn hide(&mut self, dir: &Path) -> Result<()> {
            self.rec(format!("hide({})", dir.display()))
        }
        fn overlay_etc(
            &mut self,
            layer: &Path,
            _: &Path,
            _: &[PathBuf],
            extra: &[(PathBuf, String)],
        ) -> Result<()> {
            let extra: Vec<String> = extra
                .iter()
                .map(|(p, _)| format!(", + {}", p.display()))
                .collect();
            self.rec(format!(
                "overlay(/etc, {}{})",
                layer.display(),
                extra.concat()
            ))
        }
        fn warn(&mut self, message: &str) {
            self.calls.push(format!("warn({message})"));
        }
        fn setgroups(&mut self, g: &[Gid]) -> Result<()> {
            self.rec(format!("setgroups({g:?})"))
        }
        fn setresgid(&mut self, g: Gid) -> Result<()> {
            self.rec(format!("setresgid({g})"))
        }
        fn setresuid(&mut self, u: Uid) -> Result<()> {
            self.rec(format!("setresuid({u})"))
        }
        fn clear_capabilities(&mut self) -> Result<()> {
            self.rec("clear_caps".into())
        }
        fn set_no_new_privs(&mut self) -> Result<()> {
            self.rec("no_new_privs".into())
        }
        fn default_sigpipe(&mut self) -> Result<()> {
            self.rec("sigpipe(default)".into())
        }
        fn set_signal_mask(&mut self, m: &SigSet) -> Result<()> {
            let names: Vec<&str> = m.iter().map(|s| s.as_str()).collect();
            self.rec(format!("sigmask([{}])", names.join(", ")))
        }
        fn execvp(&mut self, argv: &[CString], env: &[CString]) -> Errno {
            self.env = env.to_vec();
            let _ = self.rec(format!("execvp({argv:?})"));
            Errno::ENOENT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Recorder;
    use super::*;

    #[test]
    fn path_search() {
        let c = |s: &str| CString::new(s).unwrap();
        assert_eq!(
            search_path(&c("psql"), "/usr/local/bin::/bin".as_ref()),
            vec![c("/usr/local/bin/psql"), c("./psql"), c("/bin/psql")]
        );
        assert_eq!(search_path(&c("./x"), "/bin".as_ref()), vec![c("./x")]);
    }

    fn target(uid: u32) -> Target {
        Target {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(uid),
            groups: vec![Gid::from_raw(uid), Gid::from_raw(27)],
            name: "alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        }
    }

    fn plan(ns: BorrowedFd<'_>, uid: u32) -> Plan<'_> {
        Plan {
            netns: "nsvpn-acme",
            ns,
            etc: EtcFiles {
                layer: "/etc/netns/nsvpn-acme".into(),
                binds: vec![
                    ("/etc/netns/nsvpn-acme/hosts".into(), "/etc/hosts".into()),
                    (
                        "/etc/netns/nsvpn-acme/resolv.conf".into(),
                        "/etc/resolv.conf".into(),
                    ),
                ],
                kept: "/run/nsvpn/acme".into(),
            },
            hidden: vec!["/run/nscd".into(), "/run/systemd/resolve".into()],
            target: target(uid),
            argv: vec![CString::new("psql").unwrap()],
            env: vec![],
            prompt: None,
            signal_mask: None,
        }
    }

    #[test]
    fn order_for_a_user() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut r = Recorder::default();
        let failure = run(&mut r, &plan(f.as_fd(), 1000));
        assert_eq!(failure.exit_code(), EXIT_NOT_FOUND);
        insta::assert_snapshot!(r.calls.join("\n"));
    }

    fn shell_plan<'a>(ns: BorrowedFd<'a>, shell: &str) -> Plan<'a> {
        let argv = vec![CString::new(shell).unwrap()];
        let env = vec![CString::new("NSVPN_PROFILE=acme").unwrap()];
        Plan {
            prompt: crate::shellrc::prompt(Path::new(shell), "acme", &argv, &env),
            argv,
            env,
            ..plan(ns, 1000)
        }
    }

    /// `nsvpn shell` under bash or zsh: the overlay carries the prompt's rc
    /// files and the shell is started to read them; without the overlay the
    /// plain shell runs, and the warning says the prompt lacks the profile.
    #[test]
    fn a_shell_gets_its_prompt_files_with_the_overlay() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut r = Recorder::default();
        run(&mut r, &shell_plan(f.as_fd(), "/bin/bash"));
        let bash = r.calls.join("\n");
        let mut r = Recorder::default();
        run(&mut r, &shell_plan(f.as_fd(), "/usr/bin/zsh"));
        let zsh_env: Vec<_> = r
            .env
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        let mut r = Recorder {
            fail_on: vec!["overlay"],
            ..Default::default()
        };
        run(&mut r, &shell_plan(f.as_fd(), "/usr/bin/zsh"));
        let plain_env: Vec<_> = r
            .env
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        insta::assert_snapshot!(format!(
            "bash:\n{bash}\nzsh's environment: {zsh_env:?}\n\nzsh without the overlay:\n{}\n\
             environment: {plain_env:?}",
            r.calls.join("\n")
        ));
    }

    /// A command (and a shell nsvpn has no prompt files for) gets nothing
    /// more in /etc.
    #[test]
    fn a_command_gets_no_prompt_files() {
        let f = std::fs::File::open("/dev/null").unwrap();
        for p in [plan(f.as_fd(), 1000), shell_plan(f.as_fd(), "/bin/sh")] {
            let mut r = Recorder::default();
            run(&mut r, &p);
            assert!(
                r.calls
                    .contains(&"overlay(/etc, /etc/netns/nsvpn-acme)".to_string()),
                "{:?}",
                r.calls
            );
        }
    }

    /// After an automatic `up`, the command gets the caller's signal mask
    /// back, as the last step before execvp (root's command too); without
    /// one, the mask is left alone (exec of a profile that is up).
    #[test]
    fn after_an_automatic_up_the_callers_signal_mask_comes_back_last() {
        let f = std::fs::File::open("/dev/null").unwrap();
        for uid in [1000, 0] {
            let mut p = plan(f.as_fd(), uid);
            p.signal_mask = Some([nix::sys::signal::Signal::SIGUSR1].into_iter().collect());
            let mut r = Recorder::default();
            run(&mut r, &p);
            let n = r.calls.len();
            assert_eq!(
                r.calls[n - 2..],
                ["sigmask([SIGUSR1])", "execvp([\"psql\"])"],
                "{:?}",
                r.calls
            );
        }
        let mut r = Recorder::default();
        run(&mut r, &plan(f.as_fd(), 1000));
        assert!(!r.calls.iter().any(|c| c.starts_with("sigmask")));

        let mut p = plan(f.as_fd(), 1000);
        p.signal_mask = Some(SigSet::empty());
        let mut r = Recorder {
            fail_on: vec!["sigmask"],
            ..Default::default()
        };
        let failure = run(&mut r, &p);
        assert_eq!(failure.exit_code(), EXIT_NSVPN_ERROR);
        assert!(!r.calls.iter().any(|c| c.starts_with("execvp")));
    }

    /// Every command, root's too, gets SIGPIPE's default action back
    /// after the drop: the command `yes | head -1` ends.
    #[test]
    fn the_command_gets_sigpipes_default_action_back() {
        let f = std::fs::File::open("/dev/null").unwrap();
        for uid in [1000, 0] {
            let mut r = Recorder::default();
            run(&mut r, &plan(f.as_fd(), uid));
            let n = r.calls.len();
            assert_eq!(
                r.calls[n - 2..],
                ["sigpipe(default)", "execvp([\"psql\"])"],
                "{:?}",
                r.calls
            );
            if uid != 0 {
                let drop = r.calls.iter().position(|c| c == "no_new_privs").unwrap();
                assert!(drop < n - 2, "{:?}", r.calls);
            }
        }
        let mut r = Recorder {
            fail_on: vec!["sigpipe"],
            ..Default::default()
        };
        let failure = run(&mut r, &plan(f.as_fd(), 1000));
        assert_eq!(failure.exit_code(), EXIT_NSVPN_ERROR);
        assert!(!r.calls.iter().any(|c| c.starts_with("execvp")));
    }

    #[test]
    fn root_keeps_its_powers() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut r = Recorder::default();
        run(&mut r, &plan(f.as_fd(), 0));
        assert!(
            !r.calls
                .iter()
                .any(|c| c.starts_with("set") && c != "setns(net)"),
            "{:?}",
            r.calls
        );
        assert!(!r.calls.contains(&"clear_caps".to_string()));
        assert!(r.calls.last().unwrap().starts_with("execvp"));
    }

    #[test]
    fn without_the_overlay_files_are_bound_with_a_warning() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut r = Recorder {
            fail_on: vec!["overlay"],
            ..Default::default()
        };
        run(&mut r, &plan(f.as_fd(), 1000));
        insta::assert_snapshot!(r.calls.join("\n"));

        let mut r = Recorder {
            fail_on: vec!["overlay", "bind(/etc/netns/nsvpn-acme/resolv.conf"],
            ..Default::default()
        };
        let failure = run(&mut r, &plan(f.as_fd(), 1000));
        assert_eq!(failure.exit_code(), EXIT_NSVPN_ERROR);
        assert!(!r.calls.iter().any(|c| c.starts_with("execvp")));
        assert!(
            failure
                .to_string()
                .contains("cannot bind /etc/netns/nsvpn-acme/resolv.conf over /etc/resolv.conf"),
            "{failure}"
        );
    }

    #[test]
    fn a_failed_step_stops_before_exec() {
        for step in [
            "setns",
            "unshare",
            "mount(/",
            "remount",
            "hide",
            "setgroups",
            "setresgid",
            "setresuid",
            "clear_caps",
            "no_new_privs",
        ] {
            let f = std::fs::File::open("/dev/null").unwrap();
            let mut r = Recorder {
                fail_on: vec![step],
                ..Default::default()
            };
            let failure = run(&mut r, &plan(f.as_fd(), 1000));
            assert_eq!(failure.exit_code(), EXIT_NSVPN_ERROR, "{step}");
            assert!(
                r.calls.last().unwrap().starts_with(step),
                "{step}: {:?}",
                r.calls
            );
            assert!(!r.calls.iter().any(|c| c.starts_with("execvp")), "{step}");
        }
    }

    #[test]
    fn exit_codes() {
        let cmd = |errno| ExecFailure::Command {
            program: "x".into(),
            errno,
        };
        assert_eq!(cmd(Errno::ENOENT).exit_code(), 127);
        assert_eq!(cmd(Errno::EACCES).exit_code(), 126);
        assert_eq!(cmd(Errno::ENOEXEC).exit_code(), 126);
        assert_eq!(ExecFailure::Setup(anyhow!("x")).exit_code(), 125);
        assert_eq!(cmd(Errno::ENOENT).to_string(), "x: command not found");
    }

    /// exec's errors read like every other command's: `nsvpn: error: ...`.
    #[test]
    fn failure_messages() {
        let cmd = |program: &str, errno| ExecFailure::Command {
            program: program.into(),
            errno,
        };
        let lines = [
            ExecFailure::Setup(anyhow!(
                "profile acme is broken: its tunnel device nsvt-acme is gone"
            ))
            .message(),
            cmd("psqll", Errno::ENOENT).message(),
            cmd("/home/alice/run.sh", Errno::EACCES).message(),
        ];
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn environment() {
        let cur = vec![
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("HOME".to_string(), "/root".to_string()),
            ("USER".to_string(), "root".to_string()),
            ("SHELL".to_string(), "/bin/zsh".to_string()),
        ];
        let env = build_env(cur.into_iter(), &target(1000), "acme", true);
        let env: Vec<String> = env
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        insta::assert_debug_snapshot!(env);
    }

    /// The desktop's sockets reach a user's command (see `session::desktop`).
    #[test]
    fn desktop_variables_are_kept() {
        let desktop = [
            ("DISPLAY", ":0"),
            ("XAUTHORITY", "/home/alice/.Xauthority"),
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ("PULSE_SERVER", "unix:/run/user/1000/pulse/native"),
            ("PIPEWIRE_REMOTE", "pipewire-0"),
            ("XDG_SESSION_TYPE", "wayland"),
            ("XDG_CURRENT_DESKTOP", "GNOME"),
        ];
        let env = build_env(
            desktop.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &target(1000),
            "acme",
            false,
        );
        for (k, v) in desktop {
            let want = CString::new(format!("{k}={v}")).unwrap();
            assert!(env.contains(&want), "{k} is not kept: {env:?}");
        }
    }

    /// What sudo (and a privileged caller) leaves in the environment never
    /// reaches a user's command; root's own command keeps it all.
    #[test]
    fn user_environment_is_sanitized() {
        let cur = || {
            [
                ("SUDO_UID", "1000"),
                ("SUDO_COMMAND", "/usr/local/sbin/nsvpn exec acme -- sh"),
                ("LD_PRELOAD", "/tmp/evil.so"),
                ("LD_LIBRARY_PATH", "/tmp"),
                ("NSVPN_PROFILES", "/tmp/p"),
                ("MAIL", "/var/mail/root"),
                ("BASH_ENV", "/root/.bashrc"),
                ("TERM", "xterm-256color"),
                ("LC_TIME", "C.UTF-8"),
                ("SSH_AUTH_SOCK", "/run/user/1000/ssh"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
        };
        let show = |env: Vec<CString>| -> Vec<String> {
            env.iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect()
        };
        insta::assert_debug_snapshot!("user", show(build_env(cur(), &target(1000), "acme", false)));
        let root_env = show(build_env(cur(), &target(0), "acme", false));
        assert!(root_env.contains(&"SUDO_UID=1000".to_string()));
        assert!(root_env.contains(&"LD_PRELOAD=/tmp/evil.so".to_string()));
    }
}
