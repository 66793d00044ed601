//! Bringing a profile up: read and check everything first, then make the
//! namespace, the veth pair and the tunnel, and return once it carries
//! traffic. All or nothing: any failure, or a stop signal, removes what this
//! `up` created.

use std::time::Duration;

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::health::{Health, health};
use super::parts::{self, Making};
use super::teardown;
use crate::backend::{self, Prepared};
use crate::ipnet::IpNet;
use crate::names::Names;
use crate::netlink::Netlink;
use crate::profile::Profile;
use crate::signals;
use crate::state::{Lock, State};
use crate::tunnel::Overrides;
use crate::util::now_unix;
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

/// Reads and checks everything `up` would, without touching the machine:
/// the profile, the files it names, what they ask for.
pub fn check(profile: &Profile) -> Result<()> {
    backend::prepare(profile, Options::default().timeout).map(|_| ())
}

pub fn up(profile: &Profile, opts: &Options) -> Result<Outcome> {
    let prepared = backend::prepare(profile, opts.timeout)?;
    // Nothing was changed so far, so a signal could end nsvpn the ordinary
    // way (at a password prompt, too). From here on SIGINT, SIGTERM and
    // SIGHUP are read instead of obeyed: one of them ends the current step
    // or wait at once and takes `up` down its rollback, which no further
    // signal cuts short.
    signals::watch()?;
    watched_up(profile, &prepared).map_err(|e| match signals::interruption(&e) {
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

fn watched_up(profile: &Profile, prepared: &Prepared) -> Result<Outcome> {
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
    crate::vtrace!("preflight done");
    signals::check()?;

    let mut st = State {
        profile: profile.name.clone(),
        kind: profile.vpn.kind(),
        names: names.clone(),
        veth: profile.veth,
        pid: None,
        started: now_unix(),
        complete: false,
        connected: None,
        overrides: Overrides::from_profile(profile),
        parts: Vec::new(),
        backend: Default::default(),
    };
    prepared.seed(&mut st);
    st.save()?;
    // A signal that arrives once the tunnel works still undoes this `up`,
    // up to the moment the state says complete.
    let result =
        bring_up(profile, &names, prepared, &mut st).and_then(|o| signals::check().map(|()| o));
    match result {
        Ok(o) => {
            st.complete = true;
            st.connected = Some(now_unix());
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

/// Refuses names and addresses that another profile or the host already
/// uses. It costs the same however many profiles are up: the other
/// profiles' interface names follow from their names (a listing of
/// /run/nsvpn, no state read), their veth subnets are on the host's links,
/// and a state is read only to name the profile a clash is with.
async fn preflight(profile: &Profile, names: &Names) -> Result<()> {
    for other in State::names() {
        if other == profile.name {
            continue;
        }
        let theirs = Names::for_profile(&other);
        let theirs_names = [&theirs.host_veth, &theirs.tunnel, &theirs.ns_veth];
        if [&names.host_veth, &names.tunnel]
            .iter()
            .any(|n| theirs_names.contains(n))
        {
            bail!(
                "profile {:?}: its interface names clash with profile {:?}, which is up; rename one of them",
                profile.name,
                other
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
    let mine = IpNet::from(profile.veth.subnet);
    for a in host.addresses().await? {
        // Another profile's veth subnet is on its host end: an address
        // inside this profile's subnet, or a subnet around it.
        let theirs = a.net.trunc();
        if !(mine.contains(a.net.addr()) || theirs.contains(mine.network())) {
            continue;
        }
        if let Some(other) = State::all().into_iter().find(|o| {
            o.profile != profile.name && IpNet::from(o.veth.subnet).contains(a.net.addr())
        }) {
            bail!(
                "profile {:?}: its veth subnet {} overlaps {} of profile {:?}, which is up; \
                 give one of them another subnet with [veth] subnet = \"...\"",
                profile.name,
                profile.veth.subnet,
                other.veth.subnet,
                other.profile
            );
        }
        if mine.contains(a.net.addr()) {
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

/// Makes the profile's parts in order: the namespace, the veth pair, the
/// tunnel (see `parts::PARTS`).
fn bring_up(
    profile: &Profile,
    names: &Names,
    prepared: &Prepared,
    st: &mut State,
) -> Result<Outcome> {
    let mut cx = Making {
        profile,
        names,
        prepared,
        st,
        ns: None,
        own: Duration::ZERO,
        waited: Duration::ZERO,
        what: String::new(),
    };
    parts::create_all(&mut cx)?;
    Ok(Outcome::Up {
        what: cx.what,
        own: cx.own,
        waited: cx.waited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;

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
