//! Deleting links without waiting for the kernel to free them.
//!
//! A netlink request to delete a link returns only once the kernel has
//! freed it: after `RTM_DELLINK` is announced (the link is out of the list,
//! its addresses and routes are gone, the programs on it were told), the
//! kernel still waits for every RCU callback in flight (`rcu_barrier()` in
//! `netdev_run_todo`), 10 to 25 ms on these machines, for nothing anyone
//! waits on: the name may be used again at once. So `down` hands the
//! request to a child process, which waits that out, and goes on as soon as
//! the kernel has announced the host's end of the veth pair deleted.
//!
//! The child is forked with the requests already written: it only sends,
//! reads the answers and exits (no allocation, nothing but system calls),
//! and it closes every other descriptor first, so that it holds neither the
//! profile's lock nor the caller's terminal or pipe.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};

/// `RTM_DELLINK` (linux/rtnetlink.h): a link's deletion, asked or announced.
const RTM_DELLINK: u16 = 17;
/// `RTNLGRP_LINK`: the multicast group of link announcements.
const RTNLGRP_LINK: u32 = 1;
/// The bytes of a netlink header and of an ifinfomsg's fields before the
/// index (family, padding, type).
const NLMSG_HDRLEN: usize = 16;
const IFI_INDEX_AT: usize = NLMSG_HDRLEN + 4;

/// What became of a detached deletion.
#[derive(Debug, PartialEq, Eq)]
pub enum Unlinked {
    /// The kernel announced the host's link deleted; a child finishes.
    Announced,
    /// The host has no such link: nothing was asked.
    NoHostLink,
}

/// A request to delete link `index`, or with index 0 every link of
/// `group`, in the namespace of the socket it is sent on.
fn dellink_request(index: u32, group: Option<u32>, seq: u32) -> Vec<u8> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    if let Some(g) = group {
        m.attributes.push(LinkAttribute::Group(g));
    }
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::DelLink(m));
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    req.header.sequence_number = seq;
    req.finalize();
    let mut buf = vec![0; req.header.length as usize];
    req.serialize(&mut buf);
    buf
}

/// Whether `buf`, netlink messages as one read returned them, announces
/// the deletion of link `index`.
fn announces_deletion(buf: &[u8], index: u32) -> bool {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
        let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap_or_default());
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return false;
        }
        if kind == RTM_DELLINK
            && len >= IFI_INDEX_AT + 4
            && i32::from_ne_bytes(
                buf[at + IFI_INDEX_AT..at + IFI_INDEX_AT + 4]
                    .try_into()
                    .unwrap_or_default(),
            ) == index as i32
        {
            return true;
        }
        // Messages are aligned to 4 bytes.
        at += (len + 3) & !3;
    }
    false
}

/// Deletes the links of `group` inside `ns` (if given), then the host's
/// link `host` if it is still there, in a child process; returns once the
/// kernel has announced `host` deleted (or the child is done), within
/// `limit`. An error means the deletion could not be seen through: the
/// caller deletes the links itself, which says why.
pub fn delete_detached(
    ns: Option<std::os::fd::BorrowedFd<'_>>,
    group: u32,
    host: &str,
    limit: Duration,
) -> Result<Unlinked> {
    let Ok(index) = nix::net::if_::if_nametoindex(host) else {
        return Ok(Unlinked::NoHostLink);
    };
    // Listening before anything is asked: the announcement cannot be missed.
    let mut watch = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
    watch
        .bind(&SocketAddr::new(0, 0))
        .and_then(|()| watch.add_membership(RTNLGRP_LINK))
        .and_then(|()| watch.set_rx_buf_sz(1 << 20))
        .and_then(|()| watch.set_non_blocking(true))
        .context("cannot listen to the kernel's link announcements")?;
    let mut asks: Vec<(Socket, Vec<u8>)> = Vec::new();
    if let Some(ns) = ns {
        let inside = crate::netns::run_in(ns, || {
            Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket in the namespace")
        })?;
        asks.push((inside, dellink_request(0, Some(group), 1)));
    }
    let here = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
    asks.push((here, dellink_request(index, None, 2)));
    let plan: Vec<(RawFd, &[u8])> = asks
        .iter()
        .map(|(s, b)| (s.as_raw_fd(), b.as_slice()))
        .collect();
    let mut kept: Vec<RawFd> = plan.iter().map(|(fd, _)| *fd).collect();
    kept.sort_unstable();
    // SAFETY: the child runs only `child`, which makes system calls on
    // memory prepared before the fork and never returns.
    let child = match unsafe { fork() }.context("cannot fork to delete the links")? {
        ForkResult::Child => child(&plan, &kept),
        ForkResult::Parent { child } => child,
    };
    drop(asks);
    let pidfd = pidfd(child)?;
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(anyhow!(
                "the kernel has not deleted {host} after {limit:?} (pid {child} is still asking)"
            ));
        }
        let mut fds = [
            PollFd::new(watch.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        let ms = PollTimeout::from(left.as_millis().min(1000) as u16 + 1);
        match poll(&mut fds, ms) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(anyhow!(e).context("cannot wait for the links' deletion")),
        }
        let readable = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
        if readable(&fds[0]) {
            loop {
                match watch.recv(&mut &mut buf[..], 0) {
                    Ok(n) if announces_deletion(&buf[..n], index) => {
                        return Ok(Unlinked::Announced);
                    }
                    Ok(_) => continue,
                    // An overflow lost announcements: the child's end says.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                    Err(_) => break,
                }
            }
        }
        if readable(&fds[1]) {
            return match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(Unlinked::Announced),
                Ok(WaitStatus::StillAlive) => continue,
                other => Err(anyhow!(
                    "the child deleting {host} failed ({other:?}); deleting it again to see why"
                )),
            };
        }
    }
}

/// The child: every descriptor but the sockets (`kept`, in order) closed,
/// each request sent and its answer read; exits 0 when each was done or
/// found nothing to delete.
fn child(plan: &[(RawFd, &[u8])], kept: &[RawFd]) -> ! {
    let mut from: RawFd = 0;
    for &fd in kept {
        if fd > from {
            // SAFETY: close_range on descriptor numbers only.
            unsafe { libc::syscall(libc::SYS_close_range, from as u32, (fd - 1) as u32, 0) };
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0) };
    let mut status = 0;
    let mut answer = [0u8; 1024];
    for (fd, req) in plan {
        // SAFETY: send and recv on a socket this process holds, with
        // buffers it owns.
        let sent = unsafe { libc::send(*fd, req.as_ptr().cast(), req.len(), 0) };
        let got = unsafe { libc::recv(*fd, answer.as_mut_ptr().cast(), answer.len(), 0) };
        if sent < 0 || got < (NLMSG_HDRLEN + 4) as isize {
            status = 1;
            continue;
        }
        // An acknowledgement: NLMSG_ERROR with 0, or minus an errno.
        let code = i32::from_ne_bytes([
            answer[NLMSG_HDRLEN],
            answer[NLMSG_HDRLEN + 1],
            answer[NLMSG_HDRLEN + 2],
            answer[NLMSG_HDRLEN + 3],
        ]);
        if code != 0 && code != -libc::ENODEV {
            status = 1;
        }
    }
    // SAFETY: ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(status) }
}

fn pidfd(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: a plain system call; the descriptor is owned from here on.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(anyhow!(nix::errno::Errno::last()).context("pidfd_open"));
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_deletion_asks_for_an_acknowledgement() {
        let req = dellink_request(0, Some(0x6e76), 7);
        let header = NLMSG_HDRLEN;
        assert_eq!(
            u32::from_ne_bytes(req[0..4].try_into().unwrap()) as usize,
            req.len()
        );
        assert_eq!(
            u16::from_ne_bytes(req[4..6].try_into().unwrap()),
            RTM_DELLINK
        );
        assert_eq!(
            u16::from_ne_bytes(req[6..8].try_into().unwrap()),
            NLM_F_REQUEST | NLM_F_ACK
        );
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 7);
        // ifinfomsg: index 0, then IFLA_GROUP (27) = 0x6e76.
        assert_eq!(
            i32::from_ne_bytes(req[header + 4..header + 8].try_into().unwrap()),
            0
        );
        let attr = &req[header + 16..];
        assert_eq!(u16::from_ne_bytes(attr[2..4].try_into().unwrap()), 27);
        assert_eq!(u32::from_ne_bytes(attr[4..8].try_into().unwrap()), 0x6e76);
    }

    #[test]
    fn the_announcement_of_one_link_among_others() {
        let other = dellink_request(5, None, 0);
        let mut new_link = dellink_request(9, None, 0);
        new_link[4..6].copy_from_slice(&16u16.to_ne_bytes()); // RTM_NEWLINK
        let ours = dellink_request(9, None, 0);
        let mut batch = [other.clone(), new_link.clone(), ours].concat();
        assert!(announces_deletion(&batch, 9));
        assert!(!announces_deletion(&batch, 7));
        assert!(!announces_deletion(&[other, new_link].concat(), 9));
        // A truncated read is not an announcement.
        batch.truncate(batch.len() - 3);
        assert!(!announces_deletion(&batch, 9));
        assert!(!announces_deletion(&[], 9));
    }
}
