//! Going down when idle: a profile's `idle_timeout`, the library below the
//! watcher part (`lifecycle::parts::watcher`), `exec`, `forward` and
//! `status`.
//!
//! # When a profile is in use
//!
//! A profile is in use while a process is inside its namespace (any
//! process but nsvpn's own helpers, as `down` counts them), and while a kept
//! forward (`[forward] ports`) has a connection open. An `nsvpn forward`
//! process is inside the namespace itself, so it keeps the profile up for as
//! long as it runs, connections or not.
//!
//! # How the watcher learns of it, cheaply
//!
//! - Processes inside: the watcher looks every [`interval`] (a quarter of
//!   the timeout, at most 30 s): one pass over /proc, as `down` makes.
//! - Short uses it could miss between two looks: nsvpn's own `exec`,
//!   `shell` and `forward` send a datagram to the watcher's socket,
//!   `/run/nsvpn/<profile>/use.sock` ([`announce`]), as they enter; the kept
//!   forwarder sends one on each connection it accepts or closes, and one
//!   every [`interval`] while any is open (so a connection open for hours
//!   keeps the profile up, and a forwarder that died stops doing so). The
//!   watcher reads what queued up when it looks: nothing wakes it between
//!   looks, so a flood of datagrams costs it nothing. The socket is
//!   writable by all (a file-capability `exec` runs as the user): anyone
//!   can keep a profile up with it, as anyone admitted could with a
//!   `sleep` inside; nobody can take one down.
//! - `status` reads what the watcher last saw, [`Record`] in
//!   `/run/nsvpn/<profile>/idle.json`, with the processes it finds itself.
//!
//! # Going down without a race against `exec`
//!
//! The watcher takes the profile's lock (so no `up` or `down` runs), writes
//! the mark `/run/nsvpn/<profile>/going-down`, then looks once more (the
//! socket, then /proc); only if the profile is still idle does it remove
//! the profile, as `nsvpn down` does. `exec` and `forward`, once they hold
//! the namespace open, announce themselves, then check that there is no
//! mark and that the namespace is still the one they opened
//! ([`entering`]). Either the watcher's last look comes after the
//! announcement (and it stays up), or the check sees the mark or a
//! namespace that is gone (and they wait for the teardown to end, then
//! bring the profile up again).

use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::paths;

/// The longest time between two looks of the watcher.
pub const MAX_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// The smallest `idle_timeout`.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// How long `exec` waits for a teardown under way to end.
const TEARDOWN_WAIT: Duration = Duration::from_secs(60);

/// How often the watcher looks, and a kept forwarder with open connections
/// says so: a quarter of the timeout, between 250 ms and 30 s (a profile
/// goes down at most that long after its timeout).
pub fn interval(timeout: Duration) -> Duration {
    (timeout / 4).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// Parses a duration as a profile gives it: numbers each with its unit,
/// `s`, `m`, `h` or `d`, largest first ("90s", "15m", "1h30m"). The error
/// is the reason alone.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const SHAPE: &str =
        "give a number with its unit (s, m, h or d), e.g. \"15m\", \"90s\", \"1h30m\"";
    if text.is_empty() {
        return Err(format!("is empty: {SHAPE}"));
    }
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{text:?} is not a duration: {SHAPE}"));
        }
        let (number, after) = rest.split_at(digits);
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(letters);
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            "" if after.is_empty() => return Err(format!("{text:?} has no unit: {SHAPE}")),
            "" => {
                let c = after.chars().next().unwrap_or(' ');
                return Err(format!("{text:?}: `{c}` is not a unit: {SHAPE}"));
            }
            u => return Err(format!("{text:?}: `{u}` is not a unit: {SHAPE}")),
        };
        if secs >= last_unit {
            return Err(format!(
                "{text:?}: give each unit once, largest first: {SHAPE}"
            ));
        }
        last_unit = secs;
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is too long"))?;
        total = n
            .checked_mul(secs)
            .and_then(|s| total.checked_add(s))
            .filter(|t| *t <= 365 * 86400)
            .ok_or_else(|| format!("{text:?} is longer than a year"))?;
        rest = after;
    }
    let d = Duration::from_secs(total);
    if d < MIN_TIMEOUT {
        return Err(format!("{text:?} is zero: {SHAPE}"));
    }
    Ok(d)
}

/// A duration as a profile would give it: "15m", "90s" as "1m30s", "1h".
pub fn compact(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut s = String::new();
    let mut left = secs;
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= size {
            s.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    s
}

/// A duration for people: "12 s", "5 min 12 s", "1 h 02 min", "3 d 4 h".
pub fn human(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {:02} s", secs / 60, secs % 60),
        3600..=86399 => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86400, secs % 86400 / 3600),
    }
}

/// What the watcher last saw, for `status`: written by the watcher alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When the profile was last seen in use (milliseconds since the
    /// epoch); at first, when the watcher started.
    pub last_used_ms: u64,
    /// What used it then: "3 processes inside", "exec", "2 forward
    /// connections open", "up".
    pub by: String,
    /// The kept forwards' open connections, as the forwarder last said.
    pub forward_connections: usize,
}

impl Record {
    pub fn load(profile: &str) -> Option<Record> {
        serde_json::from_str(&fs::read_to_string(paths::idle_record(profile)).ok()?).ok()
    }

    pub fn save(&self, profile: &str) -> Result<()> {
        crate::util::write_atomic(
            &paths::idle_record(profile),
            serde_json::to_string(self)?.as_bytes(),
            0o644,
        )
    }
}

/// Where a profile with an `idle_timeout` stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Idle {
    /// The profile's `idle_timeout`, in seconds.
    pub timeout: u64,
    /// Not idle: what uses it now ("2 processes inside").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use: Option<String>,
    /// How long it has been idle, in seconds (0 while in use).
    pub idle_for: u64,
    /// How long until it goes down by itself if nothing uses it, in seconds
    /// (the watcher looks every `interval`, so up to that much later).
    pub goes_down_in: u64,
    /// Idle for the whole timeout: the watcher takes it down.
    #[serde(skip)]
    pub due: bool,
}

/// The one judgement behind the watcher and `status`: in use if a process
/// is inside or a kept forward has a connection open (as last said, within
/// two intervals), else idle since `record.last_used_ms`. `now_ms` is in
/// milliseconds since the epoch.
pub fn judge(timeout: Duration, record: &Record, inside: usize, now_ms: u64) -> Idle {
    let timeout_ms = timeout.as_millis() as u64;
    let since = now_ms.saturating_sub(record.last_used_ms);
    let in_use = if inside > 0 {
        Some(count(inside, "process inside", "processes inside"))
    } else if record.forward_connections > 0 && since <= 2 * interval(timeout).as_millis() as u64 {
        Some(count(
            record.forward_connections,
            "forward connection open",
            "forward connections open",
        ))
    } else {
        None
    };
    let idle_ms = if in_use.is_some() { 0 } else { since };
    let left_ms = timeout_ms.saturating_sub(idle_ms);
    Idle {
        timeout: timeout.as_secs(),
        in_use,
        idle_for: idle_ms / 1000,
        goes_down_in: left_ms.div_ceil(1000),
        due: left_ms == 0,
    }
}

/// "1 process inside", "2 processes inside".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What uses a profile, as the watcher's socket hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// `exec`, `shell` or `forward` entering.
    Enter(String),
    /// The kept forwarder, with this many connections open.
    Forwards(usize),
}

impl Use {
    fn encode(&self) -> String {
        match self {
            Use::Enter(what) => format!("enter {what}"),
            Use::Forwards(n) => format!("forwards {n}"),
        }
    }

    /// Anything else is someone's noise: it still counts as a use.
    pub fn decode(msg: &[u8]) -> Use {
        let text = String::from_utf8_lossy(msg);
        match text.split_once(' ') {
            Some(("forwards", n)) if n.parse::<usize>().is_ok() => {
                Use::Forwards(n.parse().unwrap_or(0))
            }
            Some(("enter", w)) if matches!(w, "exec" | "shell" | "forward") => Use::Enter(w.into()),
            _ => Use::Enter("a message".into()),
        }
    }
}

/// The watcher's socket: bound by the watcher part (as root) and made
/// writable by all; read, never waited on, by the watcher.
pub fn bind_socket(profile: &str) -> Result<UnixDatagram> {
    let path = paths::use_socket(profile);
    let _ = fs::remove_file(&path);
    let sock =
        UnixDatagram::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
    sock.set_nonblocking(true)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot make {} writable by all", path.display()))?;
    Ok(sock)
}

/// Every datagram queued on the watcher's socket, read at once.
pub fn drain(sock: &UnixDatagram) -> Vec<Use> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(Use::decode(&buf[..n]));
        // A flood is one use: what queued is enough to know.
        if out.len() >= 1024 {
            break;
        }
    }
    out
}

/// A sender to the watcher's socket, for the kept forwarder. It sends to
/// the socket's path each time: the forwarder starts before the watcher
/// (the watcher is the last part `up` makes), and runs as nobody by then,
/// which the socket's mode allows.
pub struct Announcer {
    sock: UnixDatagram,
    path: std::path::PathBuf,
    /// How often to say that connections are still open.
    pub every: Duration,
}

impl Announcer {
    /// For a profile whose `idle_timeout` is `timeout`.
    pub fn new(profile: &str, timeout: Duration) -> Result<Announcer> {
        Announcer::at(paths::use_socket(profile), interval(timeout))
    }

    /// To the socket at `path`, saying "still open" every `every`.
    pub fn at(path: std::path::PathBuf, every: Duration) -> Result<Announcer> {
        let sock = UnixDatagram::unbound().context("cannot make a unix socket")?;
        sock.set_nonblocking(true)?;
        Ok(Announcer { sock, path, every })
    }

    /// Sends, never blocks: a full queue already tells the watcher enough,
    /// and a watcher not there yet (or gone) misses nothing it needs.
    pub fn say(&self, what: &Use) {
        let _ = self.sock.send_to(what.encode().as_bytes(), &self.path);
    }
}

/// Tells the profile's watcher, if it has one, that `what` ("exec",
/// "shell", "forward") is entering it. Costs one `stat` when the profile
/// has none (a socket made to find that out costs `exec` about 10 us).
pub fn announce(profile: &str, what: &str) {
    let path = paths::use_socket(profile);
    if !path.exists() {
        return;
    }
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.set_nonblocking(true);
        let _ = sock.send_to(Use::Enter(what.into()).encode().as_bytes(), &path);
    }
}

/// Whether the watcher is taking the profile down now: the mark is there
/// and names a watcher that runs (a mark left by one that was killed
/// half-way means nothing; the next `down` removes it).
pub fn going_down(profile: &str) -> bool {
    crate::util::read_pid(&paths::going_down(profile)).is_some_and(crate::util::alive)
}

/// Marks the profile going down, by this process (the watcher).
pub fn mark_going_down(profile: &str) -> Result<()> {
    crate::util::write_atomic(
        &paths::going_down(profile),
        format!("{}\n", std::process::id()).as_bytes(),
        0o644,
    )
}

/// Waits while the watcher takes the profile down (at most a minute).
/// Returns whether it waited.
pub fn wait_while_going_down(profile: &str) -> bool {
    if !going_down(profile) {
        return false;
    }
    eprintln!(
        "nsvpn: profile {profile} is going down by itself (idle_timeout); waiting for that to end"
    );
    let t0 = Instant::now();
    while going_down(profile) && t0.elapsed() < TEARDOWN_WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Whether `exec` or `forward`, holding the namespace `ns` open and having
/// announced itself, may enter it: no teardown is under way and the
/// namespace is still the profile's (not one an idle teardown just
/// removed). False means: wait for the teardown, then look again.
pub fn entering(profile: &str, netns: &str, ns: BorrowedFd<'_>) -> bool {
    if going_down(profile) {
        return false;
    }
    let Ok(held) = nix::sys::stat::fstat(ns.as_fd()) else {
        return false;
    };
    fs::metadata(paths::netns(netns))
        .is_ok_and(|m| m.ino() == held.st_ino && m.dev() == held.st_dev)
}

/// The unit of the template `nsvpn@.service` that runs `profile`, from the
/// text of /proc/self/cgroup (v2 or v1 lines), if this process runs in it.
pub fn own_unit(cgroup: &str, profile: &str) -> Option<String> {
    let unit = format!("nsvpn@{profile}.service");
    cgroup
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .any(|path| path.rsplit('/').next() == Some(unit.as_str()))
        .then_some(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_a_profile_gives_them() {
        for (text, secs) in [
            ("15m", 900),
            ("30s", 30),
            ("1h", 3600),
            ("90s", 90),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("1m1s", 61),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
            assert_eq!(
                parse_duration(&compact(secs)),
                Ok(Duration::from_secs(secs))
            );
        }
        assert_eq!(compact(900), "15m");
        assert_eq!(compact(90), "1m30s");
        assert_eq!(compact(5400), "1h30m");
        let errors: Vec<String> = [
            "",
            "15",
            "m",
            "15 m",
            "1.5h",
            "15min",
            "0s",
            "30m1h",
            "1m1m",
            "-5s",
            "99999999999999999999s",
            "400d",
        ]
        .iter()
        .map(|t| format!("{t:?}: {}", parse_duration(t).unwrap_err()))
        .collect();
        insta::assert_snapshot!(errors.join("\n"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(0), "0 s");
        assert_eq!(human(59), "59 s");
        assert_eq!(human(312), "5 min 12 s");
        assert_eq!(human(3720), "1 h 02 min");
        assert_eq!(human(273_600), "3 d 4 h");
    }

    #[test]
    fn the_interval_is_a_quarter_of_the_timeout_within_bounds() {
        assert_eq!(interval(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(interval(Duration::from_secs(1)), Duration::from_millis(250));
        assert_eq!(interval(Duration::from_secs(60)), Duration::from_secs(15));
        assert_eq!(interval(Duration::from_secs(900)), MAX_INTERVAL);
    }

    #[test]
    fn in_use_idle_and_a_forwarder_gone_quiet() {
        let t = Duration::from_secs(900);
        let now = 10_000_000;
        let rec = |ago_s: u64, forward_connections| Record {
            last_used_ms: now - ago_s * 1000,
            by: String::new(),
            forward_connections,
        };
        assert_eq!(
            judge(t, &rec(500, 0), 2, now),
            Idle {
                timeout: 900,
                in_use: Some("2 processes inside".into()),
                idle_for: 0,
                goes_down_in: 900,
                due: false
            }
        );
        assert_eq!(
            judge(t, &rec(20, 1), 0, now).in_use.as_deref(),
            Some("1 forward connection open")
        );
        // A forwarder says so every 30 s while connections are open: after
        // two minutes without a word, it died, and its count is stale.
        assert_eq!(
            judge(t, &rec(120, 1), 0, now),
            Idle {
                timeout: 900,
                in_use: None,
                idle_for: 120,
                goes_down_in: 780,
                due: false
            }
        );
        let over = judge(t, &rec(1000, 0), 0, now);
        assert!(over.due && over.goes_down_in == 0, "{over:?}");
        // Due to the millisecond, not the second.
        let short = Duration::from_secs(2);
        let r = Record {
            last_used_ms: now - 1999,
            ..rec(0, 0)
        };
        let almost = judge(short, &r, 0, now);
        assert!(
            !almost.due && almost.idle_for == 1 && almost.goes_down_in == 1,
            "{almost:?}"
        );
        assert!(judge(short, &r, 0, now + 1).due);
    }

    #[test]
    fn uses_travel_and_noise_still_counts() {
        for u in [Use::Enter("exec".into()), Use::Forwards(3)] {
            assert_eq!(Use::decode(u.encode().as_bytes()), u);
        }
        assert_eq!(Use::decode(b"forwards x"), Use::Enter("a message".into()));
        assert_eq!(Use::decode(b"\xff"), Use::Enter("a message".into()));
    }

    #[test]
    fn the_socket_queues_what_announcers_say() {
        let dir = std::env::temp_dir().join(format!("nsvpn-idle-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("use.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        let ann = Announcer::at(path.clone(), Duration::from_secs(1)).unwrap();
        assert_eq!(drain(&sock), []);
        ann.say(&Use::Forwards(2));
        ann.say(&Use::Forwards(1));
        let got = drain(&sock);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, [Use::Forwards(2), Use::Forwards(1)]);
    }

    #[test]
    fn the_unit_is_found_in_the_cgroup_path() {
        let v2 = "0::/system.slice/system-nsvpn.slice/nsvpn@acme.service\n";
        let v1 = "12:pids:/system.slice/system-nsvpn.slice/nsvpn@acme.service\n1:name=systemd:/system.slice/system-nsvpn.slice/nsvpn@acme.service\n";
        assert_eq!(own_unit(v2, "acme").as_deref(), Some("nsvpn@acme.service"));
        assert_eq!(own_unit(v1, "acme").as_deref(), Some("nsvpn@acme.service"));
        // Another profile's unit, a user's own service, a login session.
        assert_eq!(own_unit(v2, "acm"), None);
        assert_eq!(
            own_unit("0::/system.slice/my-vpn-tools.service\n", "acme"),
            None
        );
        assert_eq!(
            own_unit("0::/user.slice/user-1000.slice/session-2.scope\n", "acme"),
            None
        );
        assert_eq!(own_unit("", "acme"), None);
    }
}
