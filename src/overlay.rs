//! The `/etc` of an exec: a read-only overlay whose top layer is a private
//! copy of `/etc/netns/<ns>/`, mounted in the exec's own mount namespace.
//!
//! The copy lives in a small tmpfs mounted over `/etc/netns/<ns>` (in the
//! exec's mount namespace only): overlayfs refuses layers that overlap, and
//! on most machines `/etc/netns/<ns>` lies inside `/etc`'s own filesystem.
//! Mounts below `/etc` (bind-mounted files in a container, say) would be
//! hidden by the overlay, so each is cloned first and attached again on top.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::libc;
use nix::mount::MsFlags;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Mounts the overlay on `/etc`. Call only inside a private mount namespace.
/// `files` are the regular files of `layer` (listed once, by the caller);
/// `extra` are more files for the top layer (paths relative to `/etc`,
/// contents), readable by all (`nsvpn shell`'s rc files).
pub fn mount_etc(layer: &Path, files: &[PathBuf], extra: &[(PathBuf, String)]) -> Result<()> {
    let files = read_files(files)?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("cannot read mountinfo")?;
    let keep: Vec<PathBuf> = submounts(&mountinfo, "/etc")
        .into_iter()
        .filter(|m| {
            !m.starts_with(layer) && !files.iter().any(|(n, _)| *m == Path::new("/etc").join(n))
        })
        .collect();
    let clones = keep
        .iter()
        .map(|m| {
            Ok((
                m,
                open_tree(m)
                    .with_context(|| format!("cannot clone the mount at {}", m.display()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;

    let private = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    nix::mount::mount(
        Some("nsvpn-etc"),
        layer,
        Some("tmpfs"),
        private,
        Some("size=64k,mode=0755"),
    )
    .with_context(|| format!("cannot mount a tmpfs on {}", layer.display()))?;
    for (name, bytes) in &files {
        write_readable(&layer.join(name), bytes)?;
    }
    for (rel, text) in extra {
        write_readable(&layer.join(rel), text.as_bytes())?;
    }
    let options = format!("lowerdir={}:/etc", layer.display());
    nix::mount::mount(
        Some("nsvpn-etc"),
        "/etc",
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(options.as_str()),
    )
    .context("overlayfs")?;
    for (at, fd) in clones {
        move_mount(&fd, at)
            .with_context(|| format!("cannot attach the mount at {} again", at.display()))?;
    }
    Ok(())
}

/// Writes `text` to a new file at `path` (and its directory), readable by
/// all whatever the umask: the user's shell reads it after nsvpn dropped to
/// the user.
fn write_readable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let readable =
        |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .and_then(|()| readable(dir, 0o755))
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
        .and_then(|()| readable(path, 0o644))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Each file's name and contents.
fn read_files(files: &[PathBuf]) -> Result<Vec<(std::ffi::OsString, Vec<u8>)>> {
    files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_os_string();
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok((name, bytes))
        })
        .collect()
}

/// The outermost mounts strictly below `top`, from mountinfo's text.
pub fn submounts(mountinfo: &str, top: &str) -> Vec<PathBuf> {
    let top = Path::new(top);
    let mut all: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(top) && p != top)
        .collect();
    all.sort();
    all.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in all {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cpath(p: &Path) -> Result<CString> {
    Ok(CString::new(p.as_os_str().as_bytes())?)
}

fn open_tree(path: &Path) -> Result<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: a plain system call on a valid C string; the fd it returns is
    // owned from here on.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Errno::last().into());
    }
    // SAFETY: fd is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn move_mount(from: &OwnedFd, to: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let c = cpath(to)?;
    // SAFETY: a plain system call on a valid fd and C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(Errno::last().into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outermost_submounts() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/vda rw
30 22 0:5 / /etc rw - overlay x rw
31 30 0:6 / /etc/netns rw - tmpfs x rw
32 31 0:7 / /etc/netns/nsvpn-a rw - tmpfs x rw
33 30 8:1 /a /etc/host\\040name rw - ext4 /dev/vda rw
34 22 0:8 / /etcetera rw - tmpfs x rw
";
        assert_eq!(
            submounts(info, "/etc"),
            vec![PathBuf::from("/etc/host name"), PathBuf::from("/etc/netns")]
        );
        assert!(submounts(info, "/nothing").is_empty());
    }

    #[test]
    fn unescape_is_total() {
        assert_eq!(unescape("a\\040b\\134"), "a b\\");
        assert_eq!(unescape("\\01"), "\\01");
        assert_eq!(unescape("\\011x"), "\tx");
    }
}
