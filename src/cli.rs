// The command line: the one definition that parsing, `--help`, the man
// pages and the shell completions come from. build.rs includes this file
// (and src/docs.rs) to write the man pages and completions the Debian
// package ships, so it uses nothing but std and clap, and has no inner
// attributes.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "nsvpn",
    version,
    about = "Give every VPN its own network namespace, and run programs inside one",
    long_about = "nsvpn gives every VPN profile its own Linux network namespace: its tunnel, \
                  routes and DNS are seen only by the programs you run inside it with \
                  `nsvpn exec` or `nsvpn shell`. Several VPNs that claim the same subnet \
                  run side by side, and the host's routes and /etc/resolv.conf stay as they are."
)]
pub struct Cli {
    /// Directory of profiles (default: $NSVPN_PROFILES, else /etc/nsvpn/profiles)
    #[arg(long, global = true, value_name = "DIR")]
    pub profiles: Option<PathBuf>,

    /// More output on stderr (repeat for more)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect; return once the tunnel carries traffic
    Up {
        profile: String,
        /// Seconds to wait for the VPN's handshake
        #[arg(long, default_value_t = 20, value_name = "SECS")]
        timeout: u64,
    },
    /// Disconnect and remove every trace
    Down {
        profile: String,
        /// End processes still running inside
        #[arg(long)]
        kill: bool,
    },
    /// Run a command inside, as the invoking user (brings the profile up first if it is down)
    Exec {
        profile: String,
        /// The command and its arguments
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<OsString>,
    },
    /// The user's login shell inside
    Shell { profile: String },
    /// State, tunnel health, addresses, routes, DNS, processes inside
    Status {
        profile: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Known profiles and whether each is up
    List,
    /// Like `ssh -L`: listen on the host, open each connection from inside the profile
    #[command(
        long_about = "Like `ssh -L`: listen on the host and open each connection from inside the \
                      profile's namespace, through its tunnel; HOST resolves through the \
                      profile's DNS and hosts, as for `nsvpn exec`, and a profile that is down \
                      is brought up first. Runs in the foreground, as \
                      the invoking user once its sockets exist; Ctrl-C (or SIGTERM) closes \
                      the listeners, cuts open connections and exits 128 + the signal."
    )]
    Forward {
        profile: String,
        /// What to forward: local PORT (on BIND, default 127.0.0.1; IPv6 in brackets) to
        /// HOST:HOSTPORT inside, e.g. 15432:db.internal:5432
        #[arg(required = true, value_name = "[BIND:]PORT:HOST:HOSTPORT")]
        specs: Vec<String>,
    },
    /// Find what is wrong with the host's or a profile's routes, DNS, MTU, tunnel and leftovers
    #[command(
        long_about = "Find what is wrong with the host's or a profile's routes, DNS, MTU, tunnel \
                      and leftovers, and say what to do: each finding has the evidence (routes, \
                      addresses, sizes, files), why it matters and the exact fix. Without a \
                      profile: the host's routes (tunnels over container bridges, Tailscale, the \
                      LAN, each other; loopback), who owns /etc/resolv.conf, and nsvpn's \
                      leftovers. With one that is up: its tunnel (a dead client, a WireGuard \
                      handshake that never completes), routes and loopback inside, which DNS \
                      server answers, and the path MTU to HOST (default: the VPN's first DNS \
                      server) by don't-fragment probes. Only reads and probes; changes nothing. \
                      Exits 0 when nothing is wrong, 1 when something is."
    )]
    Doctor {
        profile: Option<String>,
        /// A host inside the VPN to probe the MTU to (resolved through the profile)
        #[arg(long, value_name = "HOST[:PORT]")]
        target: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Print the systemd drop-in that makes a service run inside the profile
    #[command(
        long_about = "Print the systemd drop-in that makes an existing service join the profile: \
                      BindsTo= and After= nsvpn@PROFILE.service (starting the service brings the \
                      profile up, stopping the profile stops the service), \
                      NetworkNamespacePath= its namespace, the profile's resolv.conf, hosts and \
                      nsswitch.conf bound read-only over /etc's, and the host's resolver sockets \
                      out of reach. Its first lines say where it goes, e.g. \
                      /etc/systemd/system/SERVICE.d/nsvpn-PROFILE.conf."
    )]
    Unit {
        profile: String,
        /// The service (`backup` or `backup.service`)
        service: String,
    },
    /// Print the `podman run` flags that put a container inside the profile
    #[command(
        name = "podman-args",
        long_about = "Print the `podman run` flags that put a container inside the profile: its \
                      network namespace (--network=ns:/run/netns/nsvpn-PROFILE) and its \
                      resolv.conf and hosts, read-only. Use: \
                      `args=$(nsvpn podman-args PROFILE) && podman run $args IMAGE ...`. The \
                      profile must be up. On error the flags are printed all the same (for a \
                      name that is not a profile's, --network=none), with the error on stderr \
                      and status 1: a container never falls back to the host's network."
    )]
    PodmanArgs { profile: String },
    /// Print a shell completion script (bash, zsh, fish)
    #[command(
        long_about = "Print a shell completion script on stdout. The Debian package installs \
                      them where each shell looks; by hand, e.g. \
                      `nsvpn completions bash > /etc/bash_completion.d/nsvpn`."
    )]
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Run by `nsvpn up` to keep a profile's [forward] ports; not for use by hand
    #[command(hide = true, name = "kept-forwards")]
    KeptForwards { profile: String },
    /// Run by `nsvpn up` to take a profile down once idle (idle_timeout); not for use by hand
    #[command(hide = true, name = "idle-watch")]
    IdleWatch { profile: String },
    /// Run by `nsvpn up` to reconnect an IPsec profile by itself; not for use by hand
    #[command(hide = true, name = "ipsec-supervise")]
    IpsecSupervise { profile: String },
    /// Run by openvpn/openconnect as their script; not for use by hand
    #[command(hide = true)]
    Hook {
        kind: String,
        profile: String,
        /// What openvpn appends to its script's command line (ignored)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
}

/// The shells nsvpn writes completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help() {
        let mut cmd = Cli::command().term_width(100);
        let mut out = cmd.render_long_help().to_string();
        for sub in [
            "up",
            "down",
            "exec",
            "shell",
            "status",
            "list",
            "forward",
            "doctor",
            "unit",
            "podman-args",
            "completions",
        ] {
            let mut s = Cli::command().term_width(100);
            let s = s.find_subcommand_mut(sub).unwrap();
            out.push_str(&format!("\n===== nsvpn {sub} --help\n{}", s.render_help()));
        }
        insta::assert_snapshot!(out);
    }

    #[test]
    fn exec_takes_the_rest_of_the_line() {
        let cli =
            Cli::try_parse_from(["nsvpn", "exec", "acme", "psql", "-h", "db", "--", "-x"]).unwrap();
        match cli.command {
            Command::Exec { profile, command } => {
                assert_eq!(profile, "acme");
                assert_eq!(command, ["psql", "-h", "db", "--", "-x"]);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["nsvpn", "-vv", "exec", "acme", "--", "ls", "-l"]).unwrap();
        assert_eq!(cli.verbose, 2);
        assert!(matches!(cli.command, Command::Exec { command, .. } if command == ["ls", "-l"]));
    }
}
