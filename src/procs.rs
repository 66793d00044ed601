//! One look at /proc: every process's pid, command line and network
//! namespace, read once and asked many questions. `down` finds the user's
//! processes inside, each helper, the VPN client and its hooks from one
//! snapshot; `status` judges every profile from one. The cost is one pass
//! over /proc however many profiles are up, not one per question.
//!
//! A snapshot is a moment: whether a process it lists still runs is asked
//! of the process itself (`util::alive`, a pidfd), never of the snapshot.

use std::os::unix::fs::MetadataExt;

/// A process as the snapshot saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    /// Its command line, word by word (empty for a kernel thread).
    pub argv: Vec<Vec<u8>>,
    /// Its network namespace (device and inode of /proc/PID/ns/net), if it
    /// could be read.
    pub netns: Option<(u64, u64)>,
}

impl Proc {
    /// The file name of its program (the first word's last component).
    pub fn program(&self) -> &[u8] {
        self.argv
            .first()
            .map(|a| a.rsplit(|b| *b == b'/').next().unwrap_or(a))
            .unwrap_or_default()
    }

    /// Whether it runs `program` (by file name) with an argument that
    /// contains `marker`.
    pub fn runs(&self, program: &str, marker: &[u8]) -> bool {
        self.program() == program.as_bytes()
            && self
                .argv
                .iter()
                .skip(1)
                .any(|a| a.windows(marker.len()).any(|w| w == marker))
    }

    /// Its command line, arguments separated by spaces (as `ps` shows it).
    pub fn command(&self) -> String {
        self.argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Every process but this one, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Procs {
    list: Vec<Proc>,
}

impl Procs {
    /// Reads /proc. Kernel threads (no command line) are kept without a
    /// namespace: they never live in a profile's.
    pub fn read() -> Procs {
        let list = crate::util::other_pids()
            .filter_map(|pid| {
                let argv = crate::util::cmdline(pid)?;
                let netns = if argv.is_empty() {
                    None
                } else {
                    std::fs::metadata(format!("/proc/{pid}/ns/net"))
                        .ok()
                        .map(|m| (m.dev(), m.ino()))
                };
                Some(Proc { pid, argv, netns })
            })
            .collect();
        crate::vtrace!("read /proc");
        Procs { list }
    }

    /// A snapshot of the given processes (unit tests).
    pub fn of(list: Vec<Proc>) -> Procs {
        Procs { list }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Proc> {
        self.list.iter()
    }

    /// The pids of the processes that [`Proc::runs`] `program` with `marker`.
    pub fn running(&self, program: &str, marker: &[u8]) -> Vec<u32> {
        self.list
            .iter()
            .filter(|p| p.runs(program, marker))
            .map(|p| p.pid)
            .collect()
    }

    /// The processes whose network namespace is the one `(dev, ino)`
    /// names, by pid.
    pub fn in_netns(&self, ns: (u64, u64)) -> Vec<&Proc> {
        let mut out: Vec<&Proc> = self.list.iter().filter(|p| p.netns == Some(ns)).collect();
        out.sort_by_key(|p| p.pid);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, argv: &[&str], netns: Option<(u64, u64)>) -> Proc {
        Proc {
            pid,
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            netns,
        }
    }

    #[test]
    fn questions_a_snapshot_answers() {
        let procs = Procs::of(vec![
            p(
                30,
                &[
                    "/usr/sbin/dnsmasq",
                    "--pid-file=/run/nsvpn/acme/dnsmasq.pid",
                ],
                Some((4, 9)),
            ),
            p(
                12,
                &["dnsmasq", "--conf-file=/etc/dnsmasq.conf"],
                Some((4, 1)),
            ),
            p(
                20,
                &[
                    "/usr/bin/slirp4netns",
                    "--netns-type=path",
                    "/run/netns/nsvpn-acme",
                ],
                Some((4, 1)),
            ),
            p(2, &[], None),
            p(25, &["sleep", "60"], Some((4, 9))),
        ]);
        assert_eq!(procs.running("dnsmasq", b"/run/nsvpn/acme/"), [30]);
        assert_eq!(procs.running("slirp4netns", b"/run/netns/nsvpn-acme"), [20]);
        // The program is matched by file name, not as a substring.
        assert!(procs.running("masq", b"acme").is_empty());
        let inside: Vec<u32> = procs.in_netns((4, 9)).iter().map(|p| p.pid).collect();
        assert_eq!(inside, [25, 30]);
        assert_eq!(
            procs.iter().next().unwrap().command(),
            "/usr/sbin/dnsmasq --pid-file=/run/nsvpn/acme/dnsmasq.pid"
        );
    }

    #[test]
    fn reading_proc_finds_this_test_s_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30.5")
            .spawn()
            .unwrap();
        // Between fork and exec the child still has this test's command line.
        let t = std::time::Instant::now();
        while crate::util::cmdline(child.id())
            .is_none_or(|a| a.first().map(Vec::as_slice) != Some(b"sleep".as_slice()))
        {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(5),
                "sleep never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let procs = Procs::read();
        let found = procs.running("sleep", b"30.5");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, [child.id()]);
        let me = std::process::id();
        assert!(
            procs.iter().all(|p| p.pid != me),
            "the snapshot lists nsvpn itself"
        );
    }
}
