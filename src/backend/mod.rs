//! The VPN kinds, one folder or file each with the same shape, and what
//! they share. Nothing outside this folder matches on the kind.

pub mod client;
pub mod openconnect;
pub mod openvpn;
pub mod wireguard;
