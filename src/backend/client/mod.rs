//! The client-plus-hook mechanism that OpenVPN and OpenConnect share: nsvpn
//! starts the client in the host namespace and the client runs nsvpn's hook
//! when its tunnel is up, which moves the device into the profile's
//! namespace.

pub mod hook;
pub mod launch;
pub mod process;

pub use launch::{Launch, connect, last_error};
pub use process::*;
