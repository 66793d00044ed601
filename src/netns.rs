//! Network namespaces, compatible with `ip netns`: a namespace is kept alive
//! by a bind mount of its nsfs inode on a file in /run/netns.
//!
//! Creating a namespace never forks: a short-lived thread unshares its own
//! network namespace and binds `/proc/thread-self/ns/net` (its own, not the
//! main thread's) onto the file. Work that must happen inside a namespace
//! (opening a netlink socket, writing a sysctl) runs on a thread of its own
//! that has entered it; the thread ends with the work, so no pooled or main
//! thread ever changes namespace.

use std::fs;

use crate::paths::{self, NETNS_DIR};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Whether the namespace file exists and holds a namespace (not merely an
/// empty file left by a crash between create and bind).
pub fn exists(name: &str) -> bool {
    open(name).is_ok()
}

/// Opens the namespace, checking that the file really is a bound nsfs inode.
pub fn open(name: &str) -> Result<OwnedFd> {
    let p = paths::netns(name);
    let f = fs::File::open(&p).with_context(|| format!("cannot open namespace {}", p.display()))?;
    let st =
        nix::sys::statfs::fstatfs(&f).with_context(|| format!("cannot stat {}", p.display()))?;
    if st.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        bail!(
            "{} is not a network namespace (nothing is bound on it)",
            p.display()
        );
    }
    Ok(f.into())
}

/// Makes /run/netns a shared mount point, as iproute2 does, so that
/// namespaces created here are seen from every mount namespace that shares it.
fn ensure_netns_dir() -> Result<()> {
    fs::create_dir_all(NETNS_DIR).with_context(|| format!("cannot create {NETNS_DIR}"))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then share it.
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("cannot bind {NETNS_DIR} onto itself"))?;
            mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>)
                .with_context(|| format!("cannot make {NETNS_DIR} a shared mount"))
        }
        Err(e) => Err(anyhow!(e).context(format!("cannot make {NETNS_DIR} a shared mount"))),
    }
}

/// Creates the namespace `name`. Fails if it exists already.
pub fn create(name: &str) -> Result<()> {
    ensure_netns_dir()?;
    let p = paths::netns(name);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .with_context(|| format!("cannot create {}", p.display()))?;
    let target = p.clone();
    let bound = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("cannot bind the new namespace onto {}", target.display()))
    })
    .join()
    .map_err(|_| anyhow!("the namespace thread panicked"))?;
    if let Err(e) = bound {
        let _ = fs::remove_file(&p);
        return Err(e.context(format!("cannot create network namespace {name}")));
    }
    Ok(())
}

/// Removes the namespace `name`: unmounts and deletes its file. A namespace
/// that is absent, or a file that was never bound, is fine.
pub fn delete(name: &str) -> Result<()> {
    let p = paths::netns(name);
    match umount2(&p, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(anyhow!(e).context(format!("cannot unmount {}", p.display()))),
    }
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!(e).context(format!("cannot remove {}", p.display()))),
    }
}

/// Runs `f` on a fresh thread that has entered the network namespace `ns`.
pub fn run_in<T, F>(ns: BorrowedFd<'_>, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> Result<T> + Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .context("setns into the profile's namespace")?;
            f()
        })
        .join()
        .map_err(|_| anyhow!("a namespace thread panicked"))?
    })
}

/// Whether the namespace `ns` has a link named `name`. The calling thread
/// enters `ns` for one ioctl and returns to its own namespace, so this costs
/// microseconds and starts no thread (`exec` stays single-threaded).
pub fn has_link(ns: BorrowedFd<'_>, name: &str) -> Result<bool> {
    let home = fs::File::open("/proc/thread-self/ns/net")
        .context("cannot open this thread's network namespace")?;
    setns(ns, CloneFlags::CLONE_NEWNET).context("setns into the profile's namespace")?;
    let found = nix::net::if_::if_nametoindex(name);
    // Failing to return would leave this thread in the profile's namespace:
    // nothing after this may run there by mistake.
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET)
        .expect("cannot return to the original network namespace");
    match found {
        Ok(_) => Ok(true),
        Err(Errno::ENODEV) => Ok(false),
        Err(e) => Err(anyhow!(e).context(format!("cannot look up the link {name}"))),
    }
}

/// Whether the namespace nsvpn runs in has the link `name` (an ioctl on a
/// socket of this namespace: /sys may show another one's, as in a sandbox
/// made with `unshare --net` alone).
pub fn host_has_link(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Writes a sysctl of the namespace `ns` (path below /proc/sys/net).
pub fn set_net_sysctl(ns: BorrowedFd<'_>, key: &str, value: &str) -> Result<()> {
    let p = Path::new("/proc/sys/net").join(key);
    run_in(ns, || {
        fs::write(&p, value).with_context(|| format!("cannot write {}", p.display()))
    })
}

/// Sets `disable_ipv6` of `conf` (`default` or a link name) in `ns`, or in
/// nsvpn's own namespace when `ns` is `None`. A kernel without IPv6 (booted
/// with `ipv6.disable=1`) has nothing to turn off.
pub fn set_ipv6_disabled(ns: Option<BorrowedFd<'_>>, conf: &str, disabled: bool) -> Result<()> {
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return Ok(());
    }
    let key = format!("ipv6/conf/{conf}/disable_ipv6");
    let value = if disabled { "1" } else { "0" };
    match ns {
        Some(ns) => set_net_sysctl(ns, &key, value),
        None => {
            let p = Path::new("/proc/sys/net").join(&key);
            fs::write(&p, value).with_context(|| format!("cannot write {}", p.display()))
        }
    }
}

/// Turns IPv6 on for the link `ifname` in `ns` (off by default there) when
/// any of `addresses` is IPv6: the VPN provides it.
pub fn enable_ipv6_if_provided(
    ns: BorrowedFd<'_>,
    ifname: &str,
    addresses: impl IntoIterator<Item = std::net::IpAddr>,
) -> Result<()> {
    if addresses.into_iter().any(|a| a.is_ipv6()) {
        set_ipv6_disabled(Some(ns), ifname, false)?;
    }
    Ok(())
}

/// A process whose network namespace is the given one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    pub pid: u32,
    pub command: String,
}

/// The processes living in namespace `name` (this process excluded), as
/// the snapshot `procs` saw them.
pub fn processes_in(name: &str, procs: &crate::procs::Procs) -> Vec<Process> {
    let Ok(meta) = fs::metadata(paths::netns(name)) else {
        return Vec::new();
    };
    procs
        .in_netns((meta.dev(), meta.ino()))
        .into_iter()
        .map(|p| Process {
            pid: p.pid,
            command: p.command(),
        })
        .collect()
}

/// The command line of `pid`, arguments separated by spaces.
pub fn process_command(pid: u32) -> String {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) if !raw.is_empty() => raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        _ => fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_default(),
    }
}
