//! `nsvpn podman-args <profile>`: the `podman run` flags that put a
//! container in a profile: its network namespace, and the profile's
//! resolv.conf and hosts mounted read-only over the container's (podman
//! would otherwise write its own from the host's). A split profile's
//! resolv.conf names its resolver on the namespace's loopback, which the
//! container shares.
//!
//! The flags are printed whether or not the profile is up (then with an
//! error and exit status 1): `podman run $(nsvpn podman-args acme) ...`
//! that ignores the status still fails on the missing namespace instead of
//! running on the host's network.

use crate::names::Names;
use crate::paths;

/// The flags, each a single word.
pub fn args(profile: &str) -> Vec<String> {
    let names = Names::for_profile(profile);
    let etc = paths::netns_etc(&names.netns);
    let mut out = vec![format!(
        "--network=ns:{}",
        paths::netns(&names.netns).display()
    )];
    for f in ["resolv.conf", "hosts"] {
        out.push(format!("--volume={}:/etc/{f}:ro", etc.join(f).display()));
    }
    out
}

/// What `podman-args` prints when it cannot tell a profile's namespace (a
/// name that is not a profile's): a container without any network, never
/// one on the host's.
pub const NO_NETWORK: &str = "--network=none";

/// The line `podman-args` prints.
pub fn render(profile: &str) -> String {
    format!("{}\n", args(profile).join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags() {
        insta::assert_snapshot!(render("acme"));
        assert!(
            args("acme")
                .iter()
                .all(|a| !a.contains(char::is_whitespace))
        );
    }
}
