//! The `/etc` of an exec: a read-only overlay whose top layer is a copy of
//! `/etc/netns/<ns>/`, mounted in the exec's own mount namespace.
//!
//! overlayfs refuses layers that overlap, and on most machines
//! `/etc/netns/<ns>` lies inside `/etc`'s own filesystem, so the top layer is
//! a copy. It is kept between execs in `/run/nsvpn/<p>/etc/` (and a shell's
//! rc files in `/run/nsvpn/<p>/etc-shell-<hash>/`), with a note of what it was
//! copied from (`etc.from`: each file's inode, size and times): an exec
//! whose note still matches `/etc/netns/<ns>/` mounts the overlay straight
//! from it, with no file read or written. When the note does not match, root
//! refreshes the copy; a caller that may not write there (file capabilities
//! only) makes a private copy in a small tmpfs over `/etc/netns/<ns>`, in
//! the exec's mount namespace only, as every exec did before the kept copy.
//! Mounts below `/etc` (bind-mounted files in a container, say) would be
//! hidden by the overlay, so each is cloned first and attached again on top.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::libc;
use nix::mount::MsFlags;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Where the top layer is kept for the profile whose run directory is
/// `kept` (`/run/nsvpn/<p>/`): the files, and the note of what they were
/// copied from.
fn kept_paths(kept: &Path) -> (PathBuf, PathBuf) {
    (kept.join("etc"), kept.join("etc.from"))
}

/// Mounts the overlay on `/etc`. Call only inside a private mount namespace.
/// `files` are the regular files of `layer` (`/etc/netns/<ns>/`, listed once
/// by the caller); `extra` are more files for the top (paths relative to
/// `/etc`, contents), readable by all (`nsvpn shell`'s rc files); `kept` is
/// the profile's run directory, where the top layers are kept.
pub fn mount_etc(
    layer: &Path,
    kept: &Path,
    files: &[PathBuf],
    extra: &[(PathBuf, String)],
) -> Result<()> {
    let lower = match keep(kept, files, extra) {
        Ok(dirs) => dirs,
        Err(_) => vec![private_copy(layer, files, extra)?],
    };
    let mountinfo = read_mountinfo()?;
    let over = |m: &Path| {
        lower.iter().any(|l| m.starts_with(l))
            || files
                .iter()
                .filter_map(|f| f.file_name())
                .any(|n| m == Path::new("/etc").join(n))
    };
    let keep: Vec<PathBuf> = submounts(&mountinfo, "/etc")
        .into_iter()
        .filter(|m| !over(m))
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
    let mut options = String::from("lowerdir=");
    for dir in &lower {
        options.push_str(&dir.to_string_lossy());
        options.push(':');
    }
    options.push_str("/etc");
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
            .with_context(|| format!("cannot attach the mount at {}", at.display()))?;
    }
    Ok(())
}

/// Brings the kept top layer of `profile` up to date with the files of
/// `/etc/netns/<netns>/`. `up` calls this as it writes them, so that an
/// exec by a user with file capabilities only finds the layer ready.
pub fn keep_files(profile: &str, netns: &str) -> Result<()> {
    let kept = crate::paths::profile_dir(profile);
    if !kept.is_dir() {
        return Ok(());
    }
    let files: Vec<PathBuf> = crate::exec::binds_for(netns)
        .into_iter()
        .map(|(file, _)| file)
        .collect();
    keep(&kept, &files, &[]).map(drop)
}

/// /proc/self/mountinfo, read in as few calls as its size allows.
fn read_mountinfo() -> Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open("/proc/self/mountinfo")
        .and_then(|mut f| f.read_to_string(&mut text))
        .context("cannot read mountinfo")?;
    Ok(text)
}

/// The kept top layers (the shell's first, if any), brought up to date if
/// they are not: errors when this caller may not write them.
fn keep(kept: &Path, files: &[PathBuf], extra: &[(PathBuf, String)]) -> Result<Vec<PathBuf>> {
    let (etc, note) = kept_paths(kept);
    let mut lower = Vec::new();
    if !extra.is_empty() {
        lower.push(keep_extra(kept, extra)?);
    }
    let from = provenance(files)?;
    if std::fs::read(&note).ok().as_deref() != Some(from.as_bytes()) {
        refresh(kept, &etc, files)?;
        write_kept(kept, &note, from.as_bytes())?;
    }
    lower.push(etc);
    Ok(lower)
}

/// The layer of `extra` (a shell's rc files), named after what it holds
/// (`etc-shell-<hash>`): written once, whole, then renamed into place and
/// never changed, so each shell gets its own files and none is changed
/// under a shell that is starting.
fn keep_extra(kept: &Path, extra: &[(PathBuf, String)]) -> Result<PathBuf> {
    let mut all = Vec::new();
    for (rel, text) in extra {
        all.extend_from_slice(rel.as_os_str().as_bytes());
        all.push(0);
        all.extend_from_slice(text.as_bytes());
        all.push(0);
    }
    let dir = kept.join(format!("etc-shell-{:08x}", crate::names::fnv1a(&all)));
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = kept.join(format!(".etc-shell-{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let made = extra
        .iter()
        .try_for_each(|(rel, text)| write_readable(&tmp.join(rel), text.as_bytes()))
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot set the mode of {}", tmp.display()))
        });
    let placed = made.and_then(|()| match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(()),
        // Another exec placed the same files first.
        Err(_) if dir.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", dir.display())),
    });
    let _ = std::fs::remove_dir_all(&tmp);
    placed.map(|()| dir)
}

/// What `files` are now, one line each: name, device, inode, size, and
/// modification and change times to the nanosecond. nsvpn replaces these
/// files by rename (a new inode); an edit in place changes the times.
fn provenance(files: &[PathBuf]) -> Result<String> {
    let mut out = String::new();
    for f in files {
        let m = std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
        out.push_str(&format!(
            "{} {} {} {} {}.{} {}.{}\n",
            f.file_name().unwrap_or_default().to_string_lossy(),
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ));
    }
    Ok(out)
}

/// Makes `etc` hold copies of `files` and nothing else.
fn refresh(kept: &Path, etc: &Path, files: &[PathBuf]) -> Result<()> {
    let names: Vec<&std::ffi::OsStr> = files.iter().filter_map(|f| f.file_name()).collect();
    for (f, name) in files.iter().zip(&names) {
        let bytes = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        write_kept(kept, &etc.join(name), &bytes)?;
    }
    for e in std::fs::read_dir(etc).into_iter().flatten().flatten() {
        if !names.contains(&e.file_name().as_os_str()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// Replaces `path` (below `kept`) with `bytes`, readable by all, all at
/// once: written beside it in `kept` first (never in a layer, where an
/// overlay could show it), then renamed, so that an exec that mounts the
/// layer meanwhile sees the old file or the new.
fn write_kept(kept: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = kept.join(format!(".layer-{}.tmp", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            std::io::Write::write_all(&mut f, bytes)
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The top layer as a private copy: a tmpfs over `layer`, in this mount
/// namespace only, holding `files` and `extra`.
fn private_copy(layer: &Path, files: &[PathBuf], extra: &[(PathBuf, String)]) -> Result<PathBuf> {
    let files = read_files(files)?;
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
    Ok(layer.to_path_buf())
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

    /// A directory of the test's own, removed when dropped.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("nsvpn-overlay-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join("src")).unwrap();
            std::fs::create_dir_all(p.join("kept")).unwrap();
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_kept_layer_follows_its_source_and_is_left_alone_while_it_does() {
        let t = Scratch::new("keep");
        let (src, kept) = (t.0.join("src"), t.0.join("kept"));
        let write = |name: &str, text: &str| util_write(&src.join(name), text);
        write("resolv.conf", "nameserver 10.20.0.53\n");
        write("hosts", "10.20.1.5 db.internal\n");
        let files = |names: &[&str]| names.iter().map(|n| src.join(n)).collect::<Vec<_>>();
        let lower = keep(&kept, &files(&["hosts", "resolv.conf"]), &[]).unwrap();
        assert_eq!(lower, vec![kept.join("etc")]);
        assert_eq!(listing(&kept.join("etc")), ["hosts", "resolv.conf"]);
        let copy = kept.join("etc/resolv.conf");
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            "nameserver 10.20.0.53\n"
        );
        let ino = std::fs::metadata(&copy).unwrap().ino();
        // Nothing changed: nothing is written again.
        keep(&kept, &files(&["hosts", "resolv.conf"]), &[]).unwrap();
        assert_eq!(std::fs::metadata(&copy).unwrap().ino(), ino);
        // Replaced by rename, as nsvpn writes it: copied again.
        write("resolv.conf", "nameserver 10.20.0.54\n");
        keep(&kept, &files(&["hosts", "resolv.conf"]), &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            "nameserver 10.20.0.54\n"
        );
        // Edited in place, to the same size: the times tell.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(src.join("resolv.conf"), "nameserver 10.20.0.55\n").unwrap();
        keep(&kept, &files(&["hosts", "resolv.conf"]), &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            "nameserver 10.20.0.55\n"
        );
        // A file gone from the source is gone from the layer; no temporary
        // file is left anywhere.
        keep(&kept, &files(&["resolv.conf"]), &[]).unwrap();
        assert_eq!(listing(&kept.join("etc")), ["resolv.conf"]);
        assert_eq!(listing(&kept), ["etc", "etc.from"]);
        for mode in [
            std::fs::metadata(kept.join("etc")).unwrap().mode(),
            std::fs::metadata(&copy).unwrap().mode(),
        ] {
            assert_eq!(mode & 0o777 & 0o444, 0o444, "readable by all: {mode:o}");
        }
    }

    #[test]
    fn each_shell_gets_a_layer_of_its_own_files() {
        let t = Scratch::new("shell");
        let kept = t.0.join("kept");
        let bash = vec![(PathBuf::from("nsvpn-shell/bashrc"), "PS1=x".to_string())];
        let zsh = vec![
            (PathBuf::from("nsvpn-shell/.zshenv"), "a".to_string()),
            (PathBuf::from("nsvpn-shell/.zshrc"), "b".to_string()),
        ];
        let b = keep(&kept, &[], &bash).unwrap();
        let z = keep(&kept, &[], &zsh).unwrap();
        assert_eq!(b.len(), 2);
        assert_ne!(b[0], z[0]);
        assert_eq!(listing(&b[0].join("nsvpn-shell")), ["bashrc"]);
        assert_eq!(listing(&z[0].join("nsvpn-shell")), [".zshenv", ".zshrc"]);
        assert_eq!(keep(&kept, &[], &bash).unwrap(), b);
        assert!(listing(&kept).iter().all(|n| !n.ends_with(".tmp")));
    }

    fn util_write(path: &Path, text: &str) {
        crate::util::write_atomic(path, text.as_bytes(), 0o644).unwrap();
    }

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
