//! nsvpn: one network namespace per VPN profile.

pub mod backend;
pub mod caller;
/// The command line (clap): parsing, help, man pages and completions.
pub mod cli;
pub mod commands;
pub mod dnsfiles;
pub mod docs;
pub mod doctor;
pub mod ending;
pub mod exec;
pub mod forward;
pub mod idle;
pub mod ipnet;
pub mod lifecycle;
pub mod names;
pub mod netlink;
pub mod netns;
pub mod overlay;
pub mod paths;
pub mod procs;
pub mod profile;
pub mod session;
pub mod shellrc;
pub mod signals;
pub mod split;
pub mod state;
pub mod trust;
pub mod tunnel;
pub mod unlinking;
pub mod user;
pub mod util;
pub mod xfrm;
