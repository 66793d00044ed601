//! `nsvpn up <profile>`: create the namespace and the veth pair, bring the
//! tunnel up with the profile's back-end, and return once it carries
//! traffic. All or nothing: any failure removes what this `up` created.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;

use crate::backend::client::{self, Waited};
use crate::backend::openconnect;
use crate::backend::openvpn::{self, OvpnConfig};
use crate::backend::wireguard::connect::link_index;
use crate::backend::wireguard::wgquick::{self, WgQuick};
use crate::backend::wireguard::{self, DeviceConfig, userspace};
use crate::caller::{Action, Caller};
use crate::ipnet::IpNet;
use crate::names::Names;
use crate::netlink::Netlink;
use crate::netns;
use crate::paths;
use crate::profile::{Profile, Vpn};
use crate::signals;
use crate::state::{Lock, State};
use crate::teardown;
use crate::trust;
use crate::tunnel::{HookListener, HookMessage, Overrides, TunnelRecord};
use crate::util::{self, now_unix};
use crate::vlog;

#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for the VPN to connect.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(20),
        }
    }
}

pub enum Outcome {
    Up {
        /// "WireGuard, wireguard-go", "OpenVPN, tunnel 10.8.0.2/24 ...".
        what: String,
        /// nsvpn's own work.
        own: Duration,
        /// Waiting for the VPN (handshake, login).
        waited: Duration,
    },
    AlreadyUp,
}

/// Where a profile stands: the one definition behind `status`, `list` and
/// `exec`.
pub enum Health {
    Down,
    /// Up and working; the namespace, opened.
    Up(OwnedFd),
    /// Up, but the VPN client lost its connection and is making it again:
    /// the namespace stays sealed meanwhile. The text says since when and
    /// the last error.
    Reconnecting(OwnedFd, String),
    /// Traces exist but the tunnel cannot work; the reason says what to do.
    Broken(String),
}

/// The program behind a profile's tunnel, for messages.
pub fn client_program(st: &State) -> &'static str {
    match st.kind.as_str() {
        "openvpn" => openvpn::PROGRAM,
        "openconnect" => openconnect::PROGRAM,
        _ => userspace::PROGRAM,
    }
}

/// A client that lost its connection and is making it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    /// Seconds since the epoch.
    pub since: u64,
    /// The last error, in plain words, if the client said one.
    pub last_error: Option<String>,
}

impl Reconnect {
    pub fn describe(&self, now: u64) -> String {
        format!(
            "reconnecting since {} s ago{}",
            now.saturating_sub(self.since),
            self.last_error
                .as_ref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        )
    }
}

/// The last error in a client's log since it last connected.
fn last_error(profile: &str, program: &str) -> Option<String> {
    let log = std::fs::read_to_string(paths::log_file(profile, program)).ok()?;
    let since = ["Initialization Sequence Completed", "nsvpn hook: "]
        .iter()
        .filter_map(|m| log.rfind(m))
        .max()
        .unwrap_or(0);
    let tail = &log[since..];
    match program {
        "openvpn" => openvpn::failure_reason(tail),
        _ => openconnect::failure_reason(tail),
    }
}

/// Whether the profile's VPN client is reconnecting: openvpn says so on its
/// management socket, openconnect through nsvpn's hook (`attempt-reconnect`).
/// An error when the client cannot be asked (the socket is root's alone).
pub fn reconnecting(profile: &str, st: &State) -> Result<Option<Reconnect>, String> {
    use openvpn::management::{self, Connection};
    match st.kind.as_str() {
        "openvpn" => {
            let states = management::query(&paths::openvpn_management(profile))
                .map_err(|e| format!("{e:#}"))?;
            Ok(match management::connection(&states) {
                Some(Connection::Reconnecting { since, now, reason }) => Some(Reconnect {
                    since,
                    last_error: last_error(profile, openvpn::PROGRAM).or_else(|| {
                        Some(format!(
                            "openvpn {}{}",
                            now.to_lowercase(),
                            reason.map(|r| format!(" after {r}")).unwrap_or_default()
                        ))
                    }),
                }),
                Some(Connection::Connected { .. }) | None => None,
            })
        }
        "openconnect" => Ok(TunnelRecord::load(profile).and_then(|rec| {
            (!rec.connected && rec.event == "attempt-reconnect").then(|| Reconnect {
                since: rec.at,
                last_error: last_error(profile, openconnect::PROGRAM),
            })
        })),
        _ => Ok(None),
    }
}

/// The profile's health, for `exec`: the client is asked whether it
/// reconnects only when the tunnel device is gone (openvpn logs every
/// management connection, and `exec` may run often).
pub fn health(profile: &str) -> Health {
    judge(profile, false).0
}

/// The profile's health, and the client's reconnect if it is reconnecting,
/// for `status` and `list`: the client is always asked.
pub fn assess(profile: &str) -> (Health, Option<Reconnect>) {
    judge(profile, true)
}

fn judge(profile: &str, always_ask: bool) -> (Health, Option<Reconnect>) {
    let Some(st) = State::load(profile) else {
        return (Health::Down, None);
    };
    let st = &st;
    if !st.complete {
        let why = "its `up` did not finish (it is running now, or it crashed)";
        return (Health::Broken(why.into()), None);
    }
    if let Some(pid) = st.pid
        && !util::alive(pid)
    {
        return (
            Health::Broken(format!(
                "its VPN client ({} pid {pid}) has exited: it is not running, so the tunnel is gone and the namespace stays sealed until `nsvpn down {profile}`",
                client_program(st)
            )),
            None,
        );
    }
    let ns = match netns::open(&st.names.netns) {
        Ok(ns) => ns,
        Err(e) => return (Health::Broken(format!("{e:#}")), None),
    };
    // Every tunnel is a link in the namespace (for kernel WireGuard it is all
    // there is to watch). A client's link may be gone only while it
    // reconnects.
    let present = match netns::has_link(ns.as_fd(), &st.names.tunnel) {
        Ok(p) => p,
        Err(e) => return (Health::Broken(format!("{e:#}")), None),
    };
    let reconnect = if always_ask || !present {
        reconnecting(profile, st)
    } else {
        Ok(None)
    };
    let health = verdict(profile, st, ns, present, &reconnect);
    (health, reconnect.ok().flatten())
}

/// Up, reconnecting or broken, once the namespace is known to exist.
fn verdict(
    profile: &str,
    st: &State,
    ns: OwnedFd,
    present: bool,
    reconnect: &Result<Option<Reconnect>, String>,
) -> Health {
    let program = client_program(st);
    match reconnect {
        Ok(Some(r)) => Health::Reconnecting(
            ns,
            format!(
                "{program} {}; the namespace stays sealed meanwhile",
                r.describe(now_unix())
            ),
        ),
        _ if present => Health::Up(ns),
        Err(e) => Health::Reconnecting(
            ns,
            format!(
                "its tunnel device {} is gone, and nsvpn cannot ask {program} whether it is \
                 reconnecting ({e}); `sudo nsvpn status {profile}` tells",
                st.names.tunnel
            ),
        ),
        Ok(None) => {
            let client = if matches!(st.kind.as_str(), "openvpn" | "openconnect") {
                format!(" and {program} is not reconnecting")
            } else {
                String::new()
            };
            Health::Broken(format!(
                "its tunnel device {} is gone from the namespace{client}; the namespace stays sealed \
                 until `nsvpn down {profile}`",
                st.names.tunnel
            ))
        }
    }
}

/// Bringing profiles up and down writes root's files (/run/netns,
/// /run/nsvpn, /etc/netns) and reads root-only secrets, which the file
/// capabilities do not allow.
pub fn run(caller: &Caller, dir: &Path, name: &str, opts: &Options) -> Result<()> {
    let profile = Profile::load(dir, name)?;
    caller.check_access(&profile, Action::Up)?;
    caller.become_root_for("up", name)?;
    match up(&profile, opts)? {
        Outcome::AlreadyUp => println!("nsvpn: profile {name} is already up"),
        Outcome::Up { what, own, waited } => println!(
            "nsvpn: profile {name} is up ({what}; nsvpn's own work {} ms, waiting for the VPN {} ms). Run: nsvpn exec {name} -- <command>",
            own.as_millis(),
            waited.as_millis()
        ),
    }
    Ok(())
}

/// "profile "x" (path): field `f`" for error messages.
fn at(profile: &Profile, field: &str) -> String {
    format!(
        "profile {:?} ({}): field `{field}`",
        profile.name,
        profile.path.display()
    )
}

/// Reads and checks everything `up` would, without touching the machine:
/// the profile, the files it names, what they ask for.
pub fn check(profile: &Profile) -> Result<()> {
    prepare(profile, &Options::default()).map(|_| ())
}

/// Everything read and checked before the machine is touched.
enum Prepared {
    WireGuard {
        wg: WgQuick,
        device: DeviceConfig,
        force_userspace: bool,
    },
    /// openvpn or openconnect: a client that calls nsvpn's hook.
    Client(ClientLaunch),
}

/// A VPN client to start, with everything it needs.
struct ClientLaunch {
    program: &'static str,
    path: PathBuf,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    /// What the client reads on descriptor 3 (openvpn's checked config).
    fd3: Option<OwnedFd>,
    /// How long to wait for the connection.
    wait: Duration,
    label: &'static str,
    openvpn: Option<OvpnConfig>,
}

fn read_config(profile: &Profile, field: &str, path: &Path) -> Result<String> {
    trust::check(
        path,
        &at(profile, field),
        trust::Role::field(profile, field),
    )?;
    std::fs::read_to_string(path)
        .with_context(|| format!("{} ({})", at(profile, field), path.display()))
}

/// A file with keys or passwords: trusted like the profile, and warned
/// about when others can read it.
fn check_secret(profile: &Profile, field: &str, path: &Path) -> Result<()> {
    trust::check(
        path,
        &at(profile, field),
        trust::Role::field(profile, field),
    )?;
    trust::warn_if_exposed(path, &at(profile, field));
    Ok(())
}

fn find_client(program: &'static str) -> Result<PathBuf> {
    client::find_program(program).ok_or_else(|| {
        anyhow!("{program} is not installed: install it (Debian/Ubuntu: apt-get install {program})")
    })
}

fn hook_exe() -> Result<PathBuf> {
    std::env::current_exe()
        .context("cannot tell where the nsvpn binary is (for the VPN client's hook)")
}

fn prepare(profile: &Profile, opts: &Options) -> Result<Prepared> {
    match &profile.vpn {
        Vpn::WireGuard {
            config,
            userspace: force_userspace,
        } => {
            let text = read_config(profile, "vpn.config", config)?;
            trust::warn_if_exposed(config, &at(profile, "vpn.config"));
            let where_ = || format!("{} ({})", at(profile, "vpn.config"), config.display());
            let wg = wgquick::parse(&text).map_err(|e| anyhow!("{}: {e}", where_()))?;
            for w in &wg.warnings {
                eprintln!("nsvpn: warning: {}: {w}", config.display());
            }
            let device = DeviceConfig::from_wgquick(&wg).with_context(where_)?;
            if *force_userspace {
                userspace::find_program()?;
            }
            Ok(Prepared::WireGuard {
                wg,
                device,
                force_userspace: *force_userspace,
            })
        }
        Vpn::OpenVpn { config, auth_file } => {
            prepare_openvpn(profile, config, auth_file.as_deref(), opts)
        }
        Vpn::OpenConnect {
            server,
            protocol,
            user,
            password_file,
            args,
        } => {
            openconnect::check_args(args)
                .map_err(|errs| anyhow!("{}:\n  {}", at(profile, "vpn.args"), errs.join("\n  ")))?;
            let password = match password_file {
                Some(f) => {
                    check_secret(profile, "vpn.password_file", f)?;
                    let text = std::fs::read_to_string(f).with_context(|| {
                        format!("{} ({})", at(profile, "vpn.password_file"), f.display())
                    })?;
                    let pw = text.lines().next().unwrap_or("").to_string();
                    if pw.is_empty() {
                        bail!(
                            "{} ({}): the file is empty",
                            at(profile, "vpn.password_file"),
                            f.display()
                        );
                    }
                    Some(pw)
                }
                None if user.is_some() && util::stdin_is_terminal() => {
                    Some(util::read_password(&format!(
                        "Password for {} at {server}: ",
                        user.as_deref().unwrap_or("")
                    ))?)
                }
                None => None,
            };
            let path = find_client(openconnect::PROGRAM)?;
            let names = Names::for_profile(&profile.name);
            let settings = openconnect::Settings {
                server,
                protocol: protocol.as_deref(),
                user: user.as_deref(),
                with_password: password.is_some(),
                args,
            };
            let args =
                openconnect::client_args(&settings, &names.tunnel, &profile.name, &hook_exe()?)
                    .map_err(|e| anyhow!(e))?;
            Ok(Prepared::Client(ClientLaunch {
                program: openconnect::PROGRAM,
                path,
                args,
                stdin: password.map(|p| format!("{p}\n").into_bytes()),
                fd3: None,
                wait: opts.timeout,
                label: "OpenConnect",
                openvpn: None,
            }))
        }
    }
}

/// Reads the `.ovpn` (and the files it includes) as openvpn would, checks
/// it, and hands openvpn the checked copy on a sealed memfd.
fn prepare_openvpn(
    profile: &Profile,
    config: &Path,
    auth_file: Option<&Path>,
    opts: &Options,
) -> Result<Prepared> {
    let text = read_config(profile, "vpn.config", config)?;
    let dir = config.parent().unwrap_or(Path::new("/"));
    let mut load = |name: &str| -> std::result::Result<(String, String), String> {
        let path = dir.join(name);
        trust::check(
            &path,
            &at(profile, "vpn.config"),
            trust::Role::field(profile, "vpn.config"),
        )
        .map_err(|e| format!("{e:#}"))?;
        std::fs::read_to_string(&path)
            .map(|t| (path.display().to_string(), t))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let checked = openvpn::config::check(&text, &mut load).map_err(|errs| {
        anyhow!(
            "{} ({}): this .ovpn file could act on the host or take the tunnel out of nsvpn's hands:\n  {}",
            at(profile, "vpn.config"),
            config.display(),
            errs.join("\n  ")
        )
    })?;
    for w in &checked.warnings {
        eprintln!("nsvpn: warning: {}: {w}", config.display());
    }
    let cfg = checked.config;
    if cfg.prompts_for_password && auth_file.is_none() {
        bail!(
            "{}: {} asks for a user name and password (`auth-user-pass` with no file), and nsvpn runs openvpn \
             without a terminal: put the user name and the password on two lines of a root-only file and \
             name it in the profile",
            at(profile, "vpn.auth_file"),
            config.display()
        );
    }
    if let Some(a) = auth_file {
        check_secret(profile, "vpn.auth_file", a)?;
        std::fs::File::open(a)
            .with_context(|| format!("{} ({})", at(profile, "vpn.auth_file"), a.display()))?;
    }
    let path = find_client(openvpn::PROGRAM)?;
    let names = Names::for_profile(&profile.name);
    let wait = openvpn::wait_for(&cfg, opts.timeout);
    let args = openvpn::client_args(&openvpn::Launch {
        config,
        cfg: &cfg,
        tunnel: &names.tunnel,
        profile: &profile.name,
        hook_exe: &hook_exe()?,
        auth_file,
        management: &paths::openvpn_management(&profile.name),
        wait: opts.timeout,
    })
    .map_err(|e| anyhow!(e))?;
    Ok(Prepared::Client(ClientLaunch {
        program: openvpn::PROGRAM,
        path,
        args,
        stdin: None,
        fd3: Some(util::sealed_memfd("nsvpn-ovpn", checked.text.as_bytes())?),
        wait,
        label: "OpenVPN",
        openvpn: Some(cfg),
    }))
}

pub fn up(profile: &Profile, opts: &Options) -> Result<Outcome> {
    let prepared = prepare(profile, opts)?;
    // Nothing was changed so far, so a signal could end nsvpn the ordinary
    // way (at a password prompt, too). From here on SIGINT, SIGTERM and
    // SIGHUP are read instead of obeyed: one of them ends the current step
    // or wait at once and takes `up` down its rollback, which no further
    // signal cuts short.
    signals::watch()?;
    watched_up(profile, &prepared, opts).map_err(|e| match signals::interruption(&e) {
        // Stopped before it made anything: nothing to roll back.
        Some(i) if i.then.is_empty() => interrupted(&profile.name, i.signal, Ok(())),
        _ => e,
    })
}

/// The error of an `up` that a stop signal cut short, after its rollback.
fn interrupted(name: &str, signal: Signal, rollback: Result<()>) -> anyhow::Error {
    let then = match rollback {
        Ok(()) => "rolled back everything this `up` created".to_string(),
        Err(t) => format!("the rollback failed: {t:#}; run `nsvpn down {name}`"),
    };
    anyhow::Error::from(signals::Interrupted { signal, then }).context(format!("profile {name}"))
}

fn watched_up(profile: &Profile, prepared: &Prepared, opts: &Options) -> Result<Outcome> {
    let names = Names::for_profile(&profile.name);
    let _lock = Lock::acquire(&profile.name)?;
    match health(&profile.name) {
        Health::Up(_) | Health::Reconnecting(..) => return Ok(Outcome::AlreadyUp),
        Health::Broken(why) => {
            eprintln!(
                "nsvpn: profile {}: {why}; removing what is left first",
                profile.name
            );
            teardown::teardown(&names, false)?;
        }
        Health::Down if teardown::any_trace(&names) => {
            eprintln!(
                "nsvpn: profile {} has traces of an earlier `up` that did not finish; removing them first",
                profile.name
            );
            teardown::teardown(&names, false)?;
        }
        Health::Down => {}
    }
    signals::check()?;
    signals::block_on(preflight(profile, &names))?;
    signals::check()?;

    let mut st = State {
        profile: profile.name.clone(),
        kind: profile.vpn.kind().into(),
        names: names.clone(),
        veth: profile.veth,
        implementation: None,
        pid: None,
        started: now_unix(),
        complete: false,
        overrides: Overrides::from_profile(profile),
        listen_port: None,
        openvpn: match prepared {
            Prepared::Client(c) => c.openvpn.clone(),
            Prepared::WireGuard { .. } => None,
        },
    };
    st.save()?;
    // A signal that arrives once the tunnel works still undoes this `up`,
    // up to the moment the state says complete.
    let result = bring_up(profile, &names, prepared, opts, &mut st)
        .and_then(|o| signals::check().map(|()| o));
    match result {
        Ok(o) => {
            st.complete = true;
            if let Err(e) = st.save() {
                let _ = teardown::teardown(&names, true);
                return Err(e);
            }
            Ok(o)
        }
        Err(e) => {
            vlog!("up failed, rolling back: {e:#}");
            let rollback = teardown::teardown(&names, true).map(drop);
            if let Some(i) = signals::interruption(&e) {
                return Err(interrupted(&profile.name, i.signal, rollback));
            }
            if let Err(t) = rollback {
                return Err(e.context(format!("and the rollback failed too: {t:#}")));
            }
            Err(e)
        }
    }
}

/// Refuses names and addresses that another profile or the host already uses.
async fn preflight(profile: &Profile, names: &Names) -> Result<()> {
    for other in State::all() {
        if other.profile == profile.name {
            continue;
        }
        let mine = IpNet::from(profile.veth.subnet);
        let theirs = IpNet::from(other.veth.subnet);
        if mine.contains(theirs.network()) || theirs.contains(mine.network()) {
            bail!(
                "profile {:?}: its veth subnet {} overlaps {} of profile {:?}, which is up; \
                 give one of them another subnet with [veth] subnet = \"...\"",
                profile.name,
                profile.veth.subnet,
                other.veth.subnet,
                other.profile
            );
        }
        let theirs_names = [
            &other.names.host_veth,
            &other.names.tunnel,
            &other.names.ns_veth,
        ];
        if [&names.host_veth, &names.tunnel]
            .iter()
            .any(|n| theirs_names.contains(n))
        {
            bail!(
                "profile {:?}: its interface names clash with profile {:?}, which is up; rename one of them",
                profile.name,
                other.profile
            );
        }
    }
    let host = Netlink::here()?;
    for name in [&names.host_veth, &names.tunnel] {
        if host.link_by_name(name).await?.is_some() {
            bail!(
                "an interface called {name} already exists on this machine and nsvpn did not create it; remove it or rename it"
            );
        }
    }
    for a in host.addresses().await? {
        if IpNet::from(profile.veth.subnet).contains(a.net.addr()) {
            bail!(
                "profile {:?}: the host already has the address {} inside the veth subnet {}; \
                 choose another with [veth] subnet = \"...\" in {}",
                profile.name,
                a.net,
                profile.veth.subnet,
                profile.path.display()
            );
        }
    }
    Ok(())
}

/// The namespace (with lo up, ping allowed for every group, IPv6 off for
/// new links) and the veth pair, addressed. Returns the namespace, opened.
async fn plumbing(profile: &Profile, names: &Names) -> Result<OwnedFd> {
    let t0 = Instant::now();
    netns::create(&names.netns)?;
    let ns = netns::open(&names.netns)?;
    let host = Netlink::here()?;
    let inner = Netlink::in_netns(ns.as_fd())?;
    vlog!("namespace {} created ({:?})", names.netns, t0.elapsed());

    let lo = link_index(&inner, "lo").await?;
    inner.set_up(lo, None).await?;
    netns::set_net_sysctl(ns.as_fd(), "ipv4/ping_group_range", "0 2147483647")?;
    // IPv6 exists inside only if the VPN provides it: links made or moved
    // here from now on (the veth end, the tunnel) start with it off, so no
    // link-local address or router solicitation ever leaves by the veth.
    netns::set_ipv6_disabled(Some(ns.as_fd()), "default", true)?;

    let v = profile.veth;
    host.create_veth(&names.host_veth, &names.ns_veth, ns.as_fd())
        .await?;
    let hv = link_index(&host, &names.host_veth).await?;
    // The veth carries only its IPv4 /30: no IPv6 on the host's end either.
    netns::set_ipv6_disabled(None, &names.host_veth, true)?;
    host.add_address(
        hv,
        IpNet::new(v.host.into(), v.subnet.prefix()).map_err(|e| anyhow!(e))?,
    )
    .await?;
    host.set_up(hv, None).await?;
    let nv = link_index(&inner, &names.ns_veth).await?;
    inner
        .add_address(
            nv,
            IpNet::new(v.namespace.into(), v.subnet.prefix()).map_err(|e| anyhow!(e))?,
        )
        .await?;
    inner.set_up(nv, None).await?;
    vlog!(
        "veth {} <-> {} ({:?})",
        names.host_veth,
        names.ns_veth,
        t0.elapsed()
    );
    Ok(ns)
}

fn bring_up(
    profile: &Profile,
    names: &Names,
    prepared: &Prepared,
    opts: &Options,
    st: &mut State,
) -> Result<Outcome> {
    let t0 = Instant::now();
    let ns = signals::block_on(plumbing(profile, names))?;
    let plumbing = t0.elapsed();
    signals::check()?;
    match prepared {
        Prepared::WireGuard {
            wg,
            device,
            force_userspace,
        } => {
            let c = signals::block_on(wireguard::connect::connect(
                profile,
                names,
                wg,
                device,
                *force_userspace,
                ns.as_fd(),
                opts.timeout,
                st,
            ))?;
            Ok(Outcome::Up {
                what: format!("WireGuard, {}", c.backend.implementation()),
                own: plumbing + c.plumbing,
                waited: c.handshake,
            })
        }
        Prepared::Client(c) => {
            let (summary, hook_ms, waited) = connect_client(profile, c, st)?;
            let hook = Duration::from_millis(hook_ms);
            Ok(Outcome::Up {
                what: format!("{}, {summary}", c.label),
                own: plumbing + hook,
                waited: waited.saturating_sub(hook),
            })
        }
    }
}

/// Starts the VPN client and sleeps until its hook reports the tunnel
/// applied, the client exits, or the timeout passes. Returns the hook's
/// summary, its own time in ms, and the whole wait.
fn connect_client(
    profile: &Profile,
    c: &ClientLaunch,
    st: &mut State,
) -> Result<(String, u64, Duration)> {
    let program = c.program;
    let listener = HookListener::bind(&profile.name)?;
    let log = paths::log_file(&profile.name, program);
    let t0 = Instant::now();
    let fd3 = c.fd3.as_ref().map(|f| f.as_fd());
    let pid = client::spawn(&c.path, &c.args, c.stdin.as_deref(), fd3, &log)?;
    st.pid = Some(pid);
    st.save()?;
    vlog!("{program} started (pid {pid}), log in {}", log.display());
    let failed = |what: String| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let reason = match program {
            "openvpn" => openvpn::failure_reason(&text),
            _ => openconnect::failure_reason(&text),
        }
        .unwrap_or_else(|| "its log does not say why".into());
        let servers = c
            .openvpn
            .as_ref()
            .map(|cfg| servers_tried(cfg, &text))
            .unwrap_or_default();
        anyhow!(
            "{program} did not connect: {what}: {reason}{servers}\nthe end of its log ({}, removed with the rest):\n{}",
            log.display(),
            util::tail(&log, 12)
        )
    };
    match client::wait_ready(listener.fd(), pid, c.wait)? {
        Waited::Ready => match listener.recv() {
            Some(HookMessage::Connected { own_ms, summary }) => Ok((summary, own_ms, t0.elapsed())),
            Some(HookMessage::Failed { error }) => Err(anyhow!(
                "nsvpn could not set up the tunnel {program} opened: {error}\nthe end of {program}'s log ({}):\n{}",
                log.display(),
                util::tail(&log, 12)
            )),
            None => bail!("nsvpn's hook sent a message nsvpn could not read"),
        },
        Waited::Exited => Err(failed(format!(
            "it exited after {:.1} s",
            t0.elapsed().as_secs_f64()
        ))),
        Waited::TimedOut => Err(failed(format!(
            "no connection after {:.1} s (nsvpn up --timeout SECS waits longer)",
            c.wait.as_secs_f64()
        ))),
    }
}

/// "; servers tried: ...; not tried yet: ..." when the file lists several.
fn servers_tried(cfg: &OvpnConfig, log: &str) -> String {
    if cfg.remotes.len() < 2 {
        return String::new();
    }
    let tried = openvpn::remotes_tried(log);
    format!(
        "\nthe .ovpn lists {} servers ({}); openvpn tried {}{}",
        cfg.remotes.len(),
        cfg.remotes.join(", "),
        if tried.is_empty() {
            "none of them".to_string()
        } else {
            tried.join(", ")
        },
        {
            let pending: Vec<&str> = cfg
                .remotes
                .iter()
                .filter(|r| {
                    let (host, rest) = r.split_once(' ').unwrap_or((r, ""));
                    let port = rest.split('/').next().unwrap_or("");
                    !tried.contains(&format!("{host}:{port}"))
                })
                .map(String::as_str)
                .collect();
            if pending.is_empty() || tried.is_empty() {
                String::new()
            } else {
                format!("; not tried yet: {}", pending.join(", "))
            }
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_up_says_so_and_what_became_of_it() {
        let rolled_back = interrupted("acme", Signal::SIGINT, Ok(()));
        let failed = interrupted(
            "acme",
            Signal::SIGHUP,
            Err(anyhow!(
                "cannot remove /run/netns/nsvpn-acme: Device or resource busy"
            )),
        );
        assert_eq!(
            signals::interruption(&rolled_back).map(|i| i.exit_code()),
            Some(130)
        );
        assert_eq!(
            signals::interruption(&failed).map(|i| i.exit_code()),
            Some(129)
        );
        insta::assert_snapshot!(format!(
            "nsvpn: error: {rolled_back:#}\nnsvpn: error: {failed:#}"
        ));
    }
}
