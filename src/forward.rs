//! `nsvpn forward`, the library: like `ssh -L`, listen on the host and open
//! each connection from inside a profile's namespace. A persistent
//! `[forward] ports = [...]` can reuse [`parse_all`], [`prepare`] and
//! [`serve`] as they are.
//!
//! # Privileged steps, in order ([`prepare`], behind the [`Sys`] trait of
//! `exec.rs` so the order is unit-tested without root)
//!
//! 1. (the caller) the user is resolved first, the specs are parsed, the
//!    profile's `[access]` admits the user and its health is up: the
//!    namespace is opened;
//! 2. `unshare(CLONE_NEWNS)` and `/` made a recursive slave: a private
//!    mount namespace for the whole process (it is still single-threaded,
//!    so every thread started later shares it);
//! 3. the host's resolver sockets (nscd, systemd-resolved, avahi) hidden,
//!    and the profile's `/etc/netns/<ns>/` files laid over `/etc`, exactly
//!    as `exec` does: from here on, glibc's `getaddrinfo` in this process
//!    reads the profile's resolv.conf, hosts and nsswitch.conf;
//! 4. each HOST resolved once inside the namespace, on a short-lived thread
//!    that entered it (`netns::run_in`): a name that does not resolve there
//!    is an error naming the spec before anything listens;
//! 5. each listening socket bound in the host's namespace (a port in use is
//!    an error naming the spec; a port below 1024 works for root);
//! 6. `setns` of the process's only thread into the profile's namespace. A
//!    socket keeps the namespace it was made in, so the listeners stay the
//!    host's, while every socket made from now on, by this thread or the
//!    threads it starts, is made inside: that is what no longer needs any
//!    privilege, so after the next step nothing does;
//! 7. drop to the invoking user, still single-threaded: groups, gid, uid,
//!    every capability but the bounding set, `no_new_privs` (root's own
//!    forward keeps root's powers, as `exec`).
//!
//! # Serving ([`serve`], as the user, with no capability)
//!
//! The main thread polls the listeners and a stop descriptor (the
//! signalfd of SIGINT, SIGTERM, SIGHUP). Each accepted connection gets a
//! thread that resolves HOST again (names may change; the lookup goes
//! through the profile's files, as at start, and its DNS packets leave from
//! inside the namespace), connects, and relays one direction while a second
//! thread relays the other: a blocking copy through a 64 KiB buffer each,
//! an end's EOF forwarded as `shutdown(Write)` to the other (half-close),
//! an error cutting both. On a stop, the listeners close and every open
//! connection is cut (`shutdown` of both of its sockets), as `ssh -L` cuts
//! its channels when it exits.
//!
//! Because the process itself lives in the namespace, `nsvpn status` lists
//! it among the processes inside, `nsvpn down` refuses while it runs, and
//! `nsvpn down --kill` ends it (SIGTERM: it stops cleanly).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::exec;
use crate::idle::{Announcer, Use};
use crate::user::Target;

/// Where a forward listens when the spec gives no BIND, as `ssh -L`.
pub const DEFAULT_BIND: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long one connection attempt inside may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The relay buffer of one direction of one connection.
pub const BUFFER: usize = 64 * 1024;
/// Connections open at once; beyond, a new one is closed with a message.
pub const MAX_OPEN: usize = 512;

/// The host a forward connects to, inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(a) => write!(f, "{a}"),
        }
    }
}

/// One `[BIND:]PORT:HOST:HOSTPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// As given, for messages.
    pub text: String,
    /// Where it listens, on the host.
    pub listen: SocketAddr,
    pub host: Host,
    pub port: u16,
}

impl Spec {
    /// `db.internal:5432`, `[fd00::5]:5432`.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The line printed once it listens.
    pub fn describe(&self, profile: &str) -> String {
        format!(
            "nsvpn: forwarding {} -> {} inside profile {profile}",
            self.listen,
            self.target()
        )
    }
}

impl std::str::FromStr for Spec {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Spec> {
        parse(text).map_err(|why| anyhow!("forward `{text}`: {why}"))
    }
}

const SHAPE: &str = "a forward is [BIND:]PORT:HOST:HOSTPORT, as ssh -L takes it, e.g. \
                     15432:db.internal:5432 or 127.0.0.1:15432:10.20.1.5:5432";

/// Parses one spec; the error is the reason alone (the caller names the
/// spec).
fn parse(text: &str) -> Result<Spec, String> {
    let fields = split(text)?;
    let (bind, port, host, hostport) = match fields.as_slice() {
        [port, host, hostport] => (None, port, host, hostport),
        [bind, port, host, hostport] => (Some(bind), port, host, hostport),
        _ => {
            let ipv6 = if fields.len() > 4 && !text.contains('[') {
                "; an IPv6 address goes in brackets, e.g. [::1]:15432:[fd00::5]:5432"
            } else {
                ""
            };
            let n = fields.len();
            let s = if n == 1 { "" } else { "s" };
            return Err(format!("{SHAPE}; this has {n} field{s}{ipv6}"));
        }
    };
    let bind = match bind {
        None => DEFAULT_BIND,
        Some(b) => parse_bind(b)?,
    };
    Ok(Spec {
        text: text.to_string(),
        listen: SocketAddr::new(bind, parse_port(port, "local port")?),
        host: parse_host(host)?,
        port: parse_port(hostport, "remote port")?,
    })
}

/// Splits at the colons outside brackets; a bracketed field keeps its
/// brackets.
fn split(text: &str) -> Result<Vec<&str>, String> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut in_brackets = false;
    for (i, c) in text.char_indices() {
        match c {
            '[' if !in_brackets && i == start => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            '[' | ']' => {
                return Err(format!(
                    "a stray `{c}`: only a whole IPv6 address goes in brackets, e.g. [::1]:15432:db.internal:5432"
                ));
            }
            ':' if !in_brackets => {
                fields.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_brackets {
        return Err("a `[` without its `]`".into());
    }
    fields.push(&text[start..]);
    Ok(fields)
}

fn parse_port(field: &str, which: &str) -> Result<u16, String> {
    if field.is_empty() {
        return Err(format!("the {which} is missing; {SHAPE}"));
    }
    if !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the {which} `{field}` is not a port number (1 to 65535); {SHAPE}"
        ));
    }
    match field.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(format!(
            "the {which} {field} is not a port number (1 to 65535)"
        )),
    }
}

fn bracketed(field: &str) -> Option<&str> {
    field.strip_prefix('[')?.strip_suffix(']')
}

fn parse_bind(field: &str) -> Result<IpAddr, String> {
    let hint = "give an address of this machine: 127.0.0.1 (the default), [::1], or 0.0.0.0 \
                for every interface; IPv6 in brackets";
    if field == "localhost" {
        return Ok(DEFAULT_BIND);
    }
    if let Some(inner) = bracketed(field) {
        return inner
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("the listening address {field} is not an IPv6 address; {hint}"));
    }
    field
        .parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| format!("the listening address `{field}` is not an IP address; {hint}"))
}

fn parse_host(field: &str) -> Result<Host, String> {
    if let Some(inner) = bracketed(field) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|a| Host::Ip(IpAddr::V6(a)))
            .map_err(|_| format!("the host {field} is not an IPv6 address"));
    }
    if let Ok(a) = field.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(a)));
    }
    let name_ok = !field.is_empty()
        && field.len() <= 253
        && !field.starts_with(['-', '.'])
        && !field.contains("..")
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if name_ok {
        Ok(Host::Name(field.to_string()))
    } else if field.is_empty() {
        Err(format!("the host is missing; {SHAPE}"))
    } else {
        Err(format!(
            "the host `{field}` is neither a host name nor an IP address (IPv6 in brackets)"
        ))
    }
}

/// Parses every spec (all errors at once, each naming its spec) and refuses
/// two that listen on the same address.
pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Spec>> {
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for t in texts {
        match t.as_ref().parse::<Spec>() {
            Ok(s) => specs.push(s),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    for (i, a) in specs.iter().enumerate() {
        if let Some(b) = specs[..i].iter().find(|b| b.listen == a.listen) {
            errors.push(format!(
                "forwards `{}` and `{}` both listen on {}: give one of them another local port",
                b.text, a.text, a.listen
            ));
        }
    }
    match errors.len() {
        0 => Ok(specs),
        1 => Err(anyhow!(errors.remove(0))),
        n => Err(anyhow!(
            "{n} problems with the forwards:\n  {}",
            errors.join("\n  ")
        )),
    }
}

/// The system calls of a forward's setup: `exec`'s, plus a lookup inside
/// the namespace and a listening socket.
pub trait Sys: exec::Sys {
    type Listener;
    /// `host:port` to addresses, on a short-lived thread inside `ns`.
    fn resolve_in(&mut self, ns: BorrowedFd<'_>, host: &Host, port: u16)
    -> Result<Vec<SocketAddr>>;
    /// A listening socket in the current (the host's) namespace.
    fn listen(&mut self, addr: SocketAddr) -> io::Result<Self::Listener>;
}

/// Everything [`prepare`] needs, gathered before any privileged step.
pub struct Plan<'a> {
    pub profile: &'a str,
    pub netns: &'a str,
    pub ns: BorrowedFd<'a>,
    /// The profile's own `/etc` files (`exec::EtcFiles::of`).
    pub etc: exec::EtcFiles,
    /// The host's resolver socket directories (`exec::hidden_dirs`).
    pub hidden: Vec<PathBuf>,
    pub target: Target,
    pub specs: &'a [Spec],
}

/// Steps 2 to 7 (see the module's documentation): returns the listeners,
/// one per spec, with the process inside the namespace as `plan.target`.
/// Call it while single-threaded.
pub fn prepare<S: Sys>(sys: &mut S, plan: &Plan<'_>) -> Result<Vec<S::Listener>> {
    exec::private_mounts(sys)?;
    exec::resolver_files(sys, &plan.hidden, &plan.etc, &[], "for this forward")?;
    for spec in plan.specs {
        if let Host::Name(name) = &spec.host {
            sys.resolve_in(plan.ns, &spec.host, spec.port)
                .and_then(|a| {
                    if a.is_empty() {
                        bail!("it has no address")
                    } else {
                        Ok(a)
                    }
                })
                .map_err(|e| {
                    anyhow!(
                        "forward `{}`: {name} does not resolve inside profile {} ({e:#}); it \
                         resolves through {}/resolv.conf and hosts: check the name, or try \
                         `nsvpn exec {} -- getent hosts {name}`",
                        spec.text,
                        plan.profile,
                        plan.etc.layer.display(),
                        plan.profile
                    )
                })?;
        }
    }
    let mut listeners = Vec::new();
    for spec in plan.specs {
        let l = sys
            .listen(spec.listen)
            .map_err(|e| listen_error(spec, &e))?;
        listeners.push(l);
    }
    sys.setns_net(plan.ns)
        .with_context(|| format!("cannot enter network namespace {}", plan.netns))?;
    exec::drop_to(sys, &plan.target)?;
    Ok(listeners)
}

fn listen_error(spec: &Spec, e: &io::Error) -> anyhow::Error {
    let at = spec.listen;
    let what = match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
        Errno::EADDRINUSE => format!(
            "{at} is already in use (`ss -ltnp 'sport = :{}'` shows by what); choose another \
             local port",
            at.port()
        ),
        Errno::EADDRNOTAVAIL => format!(
            "{} is not an address of this machine; listen on 127.0.0.1 (the default) or on \
             one that `ip address` shows",
            at.ip()
        ),
        Errno::EACCES if at.port() < 1024 => format!(
            "port {} is below 1024, which only root may listen on; choose a port above 1023",
            at.port()
        ),
        _ => format!("cannot listen on {at}: {e}"),
    };
    anyhow!("forward `{}`: {what}", spec.text)
}

/// Whether this process has one thread, as [`prepare`] needs.
pub fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

/// Looks `host:port` up in the calling thread's namespace, through the
/// process's `/etc` (the profile's files after [`prepare`]).
pub fn lookup(host: &Host, port: u16) -> io::Result<Vec<SocketAddr>> {
    match host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Name(n) => {
            let addrs: Vec<SocketAddr> = (n.as_str(), port).to_socket_addrs()?.collect();
            if addrs.is_empty() {
                return Err(io::Error::other("it has no address"));
            }
            Ok(addrs)
        }
    }
}

impl Sys for exec::RealSys {
    type Listener = TcpListener;

    fn resolve_in(
        &mut self,
        ns: BorrowedFd<'_>,
        host: &Host,
        port: u16,
    ) -> Result<Vec<SocketAddr>> {
        crate::netns::run_in(ns, || lookup(host, port).map_err(Into::into))
    }

    fn listen(&mut self, addr: SocketAddr) -> io::Result<TcpListener> {
        let l = TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(l)
    }
}

/// The open connections, so that a stop can cut them.
#[derive(Default)]
struct Open {
    next: u64,
    sockets: HashMap<u64, Vec<TcpStream>>,
    stopped: bool,
}

#[derive(Default, Clone)]
struct Connections(Arc<Mutex<Open>>, Option<Arc<Announcer>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection's client socket; `None` when stopped or
    /// full.
    fn add(&self, client: &TcpStream) -> Result<u64, String> {
        let mut o = self.lock();
        if o.stopped {
            return Err("stopping".into());
        }
        if o.sockets.len() >= MAX_OPEN {
            return Err(format!("{MAX_OPEN} connections are open already"));
        }
        let clone = client.try_clone().map_err(|e| e.to_string())?;
        o.next += 1;
        let id = o.next;
        o.sockets.insert(id, vec![clone]);
        self.announce(o.sockets.len());
        Ok(id)
    }

    /// Tells the idle watcher, if the profile has one, how many are open.
    fn announce(&self, open: usize) {
        if let Some(a) = &self.1 {
            a.say(&Use::Forwards(open));
        }
    }

    /// Adds the socket to the server; false once stopped (the caller then
    /// ends the connection).
    fn attach(&self, id: u64, server: &TcpStream) -> bool {
        let mut o = self.lock();
        if o.stopped {
            return false;
        }
        if let (Some(v), Ok(c)) = (o.sockets.get_mut(&id), server.try_clone()) {
            v.push(c);
        }
        true
    }

    fn remove(&self, id: u64) {
        let mut o = self.lock();
        if o.sockets.remove(&id).is_some() {
            self.announce(o.sockets.len());
        }
    }

    /// Stops taking connections and cuts those open; returns how many.
    fn cut_all(&self) -> usize {
        let mut o = self.lock();
        o.stopped = true;
        for s in o.sockets.values().flatten() {
            let _ = s.shutdown(Shutdown::Both);
        }
        o.sockets.len()
    }
}

/// Serves the forwards until `stop` is readable (the signalfd of the stop
/// signals, a pipe in tests); then closes the listeners, cuts the open
/// connections and returns how many it cut. `listeners[i]` serves
/// `specs[i]`. Each connection connects from the calling thread's network
/// namespace (inherited by the threads it starts).
///
/// With an `announcer` (the kept forwards of a profile with an
/// `idle_timeout`), the idle watcher hears of each connection accepted or
/// closed, with the count still open, and of that count again every
/// `announcer.every` while it is not zero. (`nsvpn forward` has none: it is
/// a process inside the namespace itself, which keeps the profile up.)
pub fn serve(
    profile: &str,
    specs: &[Spec],
    listeners: Vec<TcpListener>,
    stop: BorrowedFd<'_>,
    announcer: Option<Announcer>,
) -> Result<usize> {
    let every = announcer.as_ref().map_or(PollTimeout::NONE, |a| {
        PollTimeout::try_from(a.every).unwrap_or(PollTimeout::MAX)
    });
    let open = Connections(Arc::default(), announcer.map(Arc::new));
    let profile: Arc<str> = Arc::from(profile);
    loop {
        let mut fds: Vec<PollFd<'_>> = std::iter::once(stop)
            .chain(listeners.iter().map(|l| l.as_fd()))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, every) {
            Ok(0) => {
                let n = open.lock().sockets.len();
                if n > 0 {
                    open.announce(n);
                }
                continue;
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(anyhow!(e).context("cannot wait for connections")),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            break;
        }
        for (i, _) in ready[1..].iter().enumerate().filter(|(_, r)| **r) {
            accept_all(&listeners[i], &specs[i], &profile, &open);
        }
    }
    drop(listeners);
    Ok(open.cut_all())
}

/// Accepts every pending connection of a listener.
fn accept_all(l: &TcpListener, spec: &Spec, profile: &Arc<str>, open: &Connections) {
    loop {
        let client = match l.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.raw_os_error() == Some(Errno::ECONNABORTED as i32) => continue,
            Err(e) => {
                // Out of descriptors, say: the connection waits in the
                // backlog; do not spin on it.
                eprintln!("nsvpn: {}: cannot accept a connection: {e}", spec.listen);
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        };
        let id = match open.add(&client) {
            Ok(id) => id,
            Err(why) => {
                eprintln!(
                    "nsvpn: {} -> {}: connection refused: {why}",
                    spec.listen,
                    spec.target()
                );
                continue;
            }
        };
        let (spec2, profile2, open2) = (spec.clone(), profile.clone(), open.clone());
        let started = std::thread::Builder::new()
            .name("nsvpn-forward".into())
            // getaddrinfo runs on it; 512 KiB is more than glibc's
            // resolver needs, far below the 2 MiB default.
            .stack_size(512 * 1024)
            .spawn(move || {
                if let Err(e) = connect_and_relay(client, &spec2, &profile2, &open2, id) {
                    eprintln!("nsvpn: {} -> {}: {e:#}", spec2.listen, spec2.target());
                }
                open2.remove(id);
            });
        if let Err(e) = started {
            eprintln!(
                "nsvpn: {} -> {}: cannot start a thread for a connection: {e}",
                spec.listen,
                spec.target()
            );
            open.remove(id);
        }
    }
}

fn connect_and_relay(
    client: TcpStream,
    spec: &Spec,
    profile: &str,
    open: &Connections,
    id: u64,
) -> Result<()> {
    let addrs = lookup(&spec.host, spec.port)
        .with_context(|| format!("{} does not resolve inside profile {profile}", spec.host))?;
    let mut last = None;
    let mut server = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(s) => {
                server = Some(s);
                break;
            }
            Err(e) => last = Some(format!("{a}: {e}")),
        }
    }
    let Some(server) = server else {
        bail!(
            "cannot connect inside profile {profile}: {}",
            last.unwrap_or_default()
        );
    };
    crate::vlog!(
        "{} -> {}: connected to {} inside profile {profile}",
        spec.listen,
        spec.target(),
        server.peer_addr().map_or("?".into(), |a| a.to_string())
    );
    if !open.attach(id, &server) {
        return Ok(());
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // A peer that resets its end is how connections often end: not worth a
    // line without -v.
    match relay(client, server) {
        Ok((up, down)) => crate::vlog!(
            "{} -> {}: closed ({up} bytes sent, {down} received)",
            spec.listen,
            spec.target()
        ),
        Err(e) => crate::vlog!("{} -> {}: cut: {e}", spec.listen, spec.target()),
    }
    Ok(())
}

/// Copies both ways until both ends have closed their sending side; an
/// EOF is passed on as `shutdown(Write)`, an error cuts both.
pub fn relay(client: TcpStream, server: TcpStream) -> io::Result<(u64, u64)> {
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    let back = std::thread::Builder::new()
        .name("nsvpn-forward".into())
        .stack_size(128 * 1024)
        .spawn(move || pump(&s2, &c2))?;
    let up = pump(&client, &server);
    let down = back
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a relay thread panicked")));
    Ok((up?, down?))
}

/// One direction: `from` to `to`, then `shutdown(Write)` of `to`.
fn pump(from: &TcpStream, to: &TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    let r = loop {
        let n = match (&*from).read(&mut buf) {
            Ok(0) => break Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        if let Err(e) = (&*to).write_all(&buf[..n]) {
            break Err(e);
        }
        total += n as u64;
    };
    match r {
        Ok(_) => {
            // The peer may be gone already: nothing more to tell it.
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::Recorder;
    use nix::unistd::{Gid, Uid};

    fn spec(text: &str) -> Spec {
        text.parse().unwrap()
    }

    #[test]
    fn specs_as_ssh_takes_them() {
        let s = spec("15432:db.internal:5432");
        assert_eq!(s.listen, "127.0.0.1:15432".parse().unwrap());
        assert_eq!(s.host, Host::Name("db.internal".into()));
        assert_eq!(s.port, 5432);
        let s = spec("0.0.0.0:8080:10.20.1.5:80");
        assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.host, Host::Ip("10.20.1.5".parse().unwrap()));
        let s = spec("[::1]:8443:[fd00::5]:443");
        assert_eq!(s.listen, "[::1]:8443".parse().unwrap());
        assert_eq!(s.host, Host::Ip("fd00::5".parse().unwrap()));
        assert_eq!(s.target(), "[fd00::5]:443");
        assert_eq!(
            spec("localhost:1:h_1.internal:65535").listen,
            "127.0.0.1:1".parse().unwrap()
        );
        let lines: Vec<String> = [
            "15432:db.internal:5432",
            "[::1]:8443:[fd00::5]:443",
            "0.0.0.0:8080:10.20.1.5:80",
        ]
        .iter()
        .map(|t| spec(t).describe("customer"))
        .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_name_the_spec() {
        let errors: Vec<String> = [
            "80:host",
            "70000:h:1",
            "x:1:h:2",
            "0:h:1",
            "15432:db.internal:",
            "15432:db.internal:pg",
            ":db.internal:5432",
            "15432::5432",
            "8080:fd00::5:80",
            "::1:8080:h:80",
            "[::1:8080:h:80",
            "[10.0.0.1]:8080:h:80",
            "8080:[db.internal]:80",
            "8080:db internal:80",
            "8080:-db:80",
            "a:b:c:d:e",
            "",
        ]
        .iter()
        .map(|t| format!("{:#}", t.parse::<Spec>().unwrap_err()))
        .collect();
        insta::assert_snapshot!(errors.join("\n"));
    }

    #[test]
    fn all_errors_at_once_and_no_two_on_one_address() {
        assert_eq!(
            parse_all(&["1:h:1", "[::1]:1:h:1", "2:h:1"]).unwrap().len(),
            3
        );
        let e = parse_all(&["1:h:1", "70000:h:1", "127.0.0.1:1:other:2", "x"]).unwrap_err();
        insta::assert_snapshot!(format!("{e:#}"));
    }

    impl Sys for Recorder {
        type Listener = String;
        fn resolve_in(&mut self, _: BorrowedFd<'_>, h: &Host, p: u16) -> Result<Vec<SocketAddr>> {
            self.rec(format!("resolve inside({h}:{p})"))?;
            Ok(vec!["10.20.1.5:5432".parse().unwrap()])
        }
        fn listen(&mut self, addr: SocketAddr) -> io::Result<String> {
            let call = format!("listen({addr})");
            match self.rec(call.clone()) {
                Ok(()) => Ok(call),
                Err(_) => Err(io::Error::from_raw_os_error(Errno::EADDRINUSE as i32)),
            }
        }
    }

    fn target(uid: u32) -> Target {
        Target {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(uid),
            groups: vec![Gid::from_raw(uid)],
            name: "alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        }
    }

    fn plan<'a>(ns: BorrowedFd<'a>, specs: &'a [Spec], uid: u32) -> Plan<'a> {
        Plan {
            profile: "customer",
            netns: "nsvpn-customer",
            ns,
            etc: exec::EtcFiles {
                layer: "/etc/netns/nsvpn-customer".into(),
                binds: vec![
                    (
                        "/etc/netns/nsvpn-customer/hosts".into(),
                        "/etc/hosts".into(),
                    ),
                    (
                        "/etc/netns/nsvpn-customer/resolv.conf".into(),
                        "/etc/resolv.conf".into(),
                    ),
                ],
                kept: "/run/nsvpn/customer".into(),
            },
            hidden: vec!["/run/nscd".into()],
            target: target(uid),
            specs,
        }
    }

    fn specs() -> Vec<Spec> {
        parse_all(&["15432:db.internal:5432", "[::1]:8080:10.20.1.80:80"]).unwrap()
    }

    /// The privileged order: private mounts and the profile's /etc, names
    /// resolved inside before anything listens, listeners in the host's
    /// namespace, then the process enters the profile's and drops to the
    /// user: nothing privileged is left after it.
    #[test]
    fn order_for_a_user() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let specs = specs();
        let mut r = Recorder::default();
        let listeners = prepare(&mut r, &plan(f.as_fd(), &specs, 1000)).unwrap();
        assert_eq!(listeners, ["listen(127.0.0.1:15432)", "listen([::1]:8080)"]);
        insta::assert_snapshot!(r.calls.join("\n"));
    }

    #[test]
    fn root_keeps_its_powers_and_a_failed_overlay_binds_with_a_warning() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let specs = specs();
        let mut r = Recorder {
            fail_on: vec!["overlay"],
            ..Default::default()
        };
        prepare(&mut r, &plan(f.as_fd(), &specs, 0)).unwrap();
        insta::assert_snapshot!(r.calls.join("\n"));
    }

    /// A step that fails stops everything after it; a name that does not
    /// resolve, or a port in use, is an error that names the spec.
    #[test]
    fn a_failed_step_stops_and_says_which_spec() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let specs = specs();
        let mut messages = Vec::new();
        for step in [
            "unshare",
            "mount(/",
            "hide",
            "resolve inside(db.internal",
            "listen([::1]",
            "setns",
            "setresuid",
            "no_new_privs",
        ] {
            let mut r = Recorder {
                fail_on: vec![step],
                ..Default::default()
            };
            let e = prepare(&mut r, &plan(f.as_fd(), &specs, 1000)).unwrap_err();
            assert!(
                r.calls.last().unwrap().starts_with(step),
                "{step}: {:?}",
                r.calls
            );
            messages.push(format!("{step}: {e:#}"));
        }
        insta::assert_snapshot!(messages.join("\n"));
    }

    #[test]
    fn listen_errors_say_what_to_do() {
        let s = spec("127.0.0.1:80:db.internal:5432");
        let lines: Vec<String> = [Errno::EADDRINUSE, Errno::EADDRNOTAVAIL, Errno::EACCES]
            .into_iter()
            .map(|e| {
                format!(
                    "{:#}",
                    listen_error(&s, &io::Error::from_raw_os_error(e as i32))
                )
            })
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    // The relay, on this process's loopback (no namespace needed): a
    // server, a forward to it, and a client.

    struct Running {
        port: u16,
        stop: std::os::fd::OwnedFd,
        served: std::thread::JoinHandle<Result<usize>>,
    }

    fn forward_to(server: SocketAddr) -> Running {
        forward_announcing(server, None)
    }

    fn forward_announcing(server: SocketAddr, announcer: Option<Announcer>) -> Running {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let s = spec(&format!("{port}:{}:{}", server.ip(), server.port()));
        let (r, w) = nix::unistd::pipe().unwrap();
        let served = std::thread::spawn(move || serve("t", &[s], vec![l], r.as_fd(), announcer));
        Running {
            port,
            stop: w,
            served,
        }
    }

    impl Running {
        fn stop(self) -> usize {
            nix::unistd::write(&self.stop, b"x").unwrap();
            self.served.join().unwrap().unwrap()
        }
    }

    /// A server that reads everything, then answers with what it read,
    /// reversed, and closes.
    fn reversing_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let mut c = c.unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    c.read_to_end(&mut got).unwrap();
                    got.reverse();
                    c.write_all(&got).unwrap();
                });
            }
        });
        addr
    }

    #[test]
    fn half_close_gets_the_answer_exactly_once_and_large_data_arrives_intact() {
        let f = forward_to(reversing_server());
        // 3 MB of a pattern that no shift or repeat keeps the same.
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for payload in [b"ping".to_vec(), data] {
            let mut c = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
            let writer = {
                let mut c = c.try_clone().unwrap();
                let payload = payload.clone();
                std::thread::spawn(move || {
                    c.write_all(&payload).unwrap();
                    c.shutdown(Shutdown::Write).unwrap();
                })
            };
            let mut answer = Vec::new();
            c.read_to_end(&mut answer).unwrap();
            writer.join().unwrap();
            let mut want = payload;
            want.reverse();
            assert!(
                answer == want,
                "{} bytes back of {}",
                answer.len(),
                want.len()
            );
        }
        assert_eq!(f.stop(), 0);
    }

    /// A kept forward of a profile with an `idle_timeout` tells the idle
    /// watcher of each connection, and keeps saying one is open while it
    /// is.
    #[test]
    fn the_idle_watcher_hears_of_connections_and_of_one_kept_open() {
        use std::os::unix::net::UnixDatagram;
        let dir = std::env::temp_dir().join(format!("nsvpn-fwd-idle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("use.sock");
        let watcher = UnixDatagram::bind(&path).unwrap();
        watcher.set_nonblocking(true).unwrap();
        let every = Duration::from_millis(100);
        let f = forward_announcing(
            reversing_server(),
            Some(Announcer::at(path, every).unwrap()),
        );
        let mut c = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
        c.write_all(b"open").unwrap();
        std::thread::sleep(every * 4);
        let while_open = crate::idle::drain(&watcher);
        c.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).unwrap();
        let mut closed = Vec::new();
        for _ in 0..100 {
            closed.extend(crate::idle::drain(&watcher));
            if closed.contains(&Use::Forwards(0)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(f.stop(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(answer, b"nepo");
        // The accept, then at least two "still open" while it was.
        assert!(
            while_open.len() >= 3 && while_open.iter().all(|u| *u == Use::Forwards(1)),
            "{while_open:?}"
        );
        assert_eq!(closed.last(), Some(&Use::Forwards(0)), "{closed:?}");
    }

    #[test]
    fn a_stop_closes_the_listener_and_cuts_open_connections() {
        let f = forward_to(reversing_server());
        let port = f.port;
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"pending").unwrap();
        // Wait until the forward has the connection open to the server.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(f.stop(), 1);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        // Cut: EOF (or a reset), never the server's answer.
        let _ = c.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{rest:?}");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn a_refused_connection_inside_closes_the_client() {
        // A port nothing listens on.
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let f = forward_to(dead);
        let mut c = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap_or(0), 0);
        assert_eq!(f.stop(), 0);
    }
}
