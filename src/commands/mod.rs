//! One file per command.

pub mod completions;
pub mod doctor;
pub mod down;
pub mod exec;
pub mod forward;
pub mod hook;
pub mod idle_watch;
pub mod ipsec_supervise;
pub mod kept_forwards;
pub mod list;
pub mod podman_args;
pub mod status;
pub mod unit;
pub mod up;
