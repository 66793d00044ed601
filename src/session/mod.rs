//! Living inside a profile beyond `nsvpn exec`: a systemd service that
//! joins the profile's namespace (`unit`), a podman container in it
//! (`podman`), and the desktop: the display, audio and session-bus sockets
//! that cross a network namespace (`desktop`), and programs that would hand
//! a request to an instance already running outside (`single`).

pub mod desktop;
pub mod podman;
pub mod single;
pub mod unit;
