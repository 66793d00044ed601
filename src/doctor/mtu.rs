//! The path MTU inside a profile: don't-fragment ICMP echoes of chosen
//! sizes to a target through the tunnel, by binary search, and whether a
//! router said "fragmentation needed". A path smaller than the tunnel with
//! no such ICMP is a black hole: small packets pass, large ones vanish.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, recvfrom, sendto, socket,
};
use serde::Serialize;

use super::{Area, Finding};

/// IPv4 and ICMP headers: what a probe of `size` bytes carries beyond its
/// payload.
const HEADERS: u32 = 20 + 8;
/// The smallest probe, the first sent: does the target answer at all?
pub const SMALL: u32 = 84;

/// The packets each probe sends.
const COPIES: usize = 2;
/// How long a probe waits for its answer once the round trip is known.
const MIN_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_millis(500);

/// What came back for one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The echo reply.
    Reply,
    /// ICMP "fragmentation needed" from a router, with the MTU it gave.
    TooBig { from: Ipv4Addr, mtu: u32 },
    /// Nothing, within the wait.
    Nothing,
}

/// Sends one probe of `size` bytes (the IP packet's length) and says what
/// came back.
pub trait Prober {
    fn probe(&mut self, size: u32) -> Result<Answer>;

    /// Waits as long as it may for the next answers (a size a router named
    /// deserves a second, patient try before it counts as lost: a busy
    /// machine answers late).
    fn be_patient(&mut self) {}
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measure {
    pub target: IpAddr,
    pub tunnel: String,
    pub tunnel_mtu: u32,
    /// The largest probe that came back; None when not even a small one did.
    pub largest: Option<u32>,
    /// The first "fragmentation needed" seen: the router and its MTU.
    pub icmp: Option<(Ipv4Addr, u32)>,
    pub probes: u32,
    /// How long the search took, in milliseconds.
    #[serde(skip)]
    pub millis: u128,
}

/// One probe; whether it was answered (a router's "fragmentation needed"
/// is kept, once).
fn ask(p: &mut dyn Prober, size: u32, m: &mut Measure) -> Result<bool> {
    m.probes += 1;
    match p.probe(size)? {
        Answer::Reply => Ok(true),
        Answer::TooBig { from, mtu } => {
            m.icmp.get_or_insert((from, mtu));
            Ok(false)
        }
        Answer::Nothing => Ok(false),
    }
}

/// The search: a small probe (does the target answer?), the tunnel's MTU
/// (does everything fit?), the MTU a router names (if one does), then a
/// binary search between what passed and what did not.
pub fn search(
    p: &mut dyn Prober,
    target: IpAddr,
    tunnel: &str,
    tunnel_mtu: u32,
) -> Result<Measure> {
    let t0 = Instant::now();
    let mut m = Measure {
        target,
        tunnel: tunnel.into(),
        tunnel_mtu,
        largest: None,
        icmp: None,
        probes: 0,
        millis: 0,
    };
    let small = SMALL.min(tunnel_mtu);
    if ask(p, small, &mut m)? {
        let (mut lo, mut hi) = (small, tunnel_mtu + 1);
        if ask(p, tunnel_mtu, &mut m)? {
            lo = tunnel_mtu;
        } else {
            hi = tunnel_mtu;
            if let Some((_, named)) = m.icmp
                && named > lo
                && named < hi
            {
                if ask(p, named, &mut m)? || {
                    p.be_patient();
                    ask(p, named, &mut m)?
                } {
                    lo = named;
                    hi = hi.min(named + 1);
                } else {
                    hi = named;
                }
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if ask(p, mid, &mut m)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        m.largest = Some(lo);
    }
    m.millis = t0.elapsed().as_millis();
    Ok(m)
}

/// What the measure means: a line when all is well (or PMTUD works), a
/// finding when not.
pub fn judge(
    m: &Measure,
    profile: &str,
    profile_file: &str,
    wg_quick: Option<&str>,
) -> Result<String, Finding> {
    let Some(largest) = m.largest else {
        return Err(Finding::notice(
            Area::Mtu,
            format!("MTU not measured: {} does not answer ping through the tunnel", m.target),
        )
        .evidence(format!(
            "no echo reply to a probe of {SMALL} bytes ({COPIES} packets) to {}",
            m.target
        ))
        .why("doctor measures the path with ping packets; a host that drops them tells nothing")
        .fix(format!(
            "nsvpn doctor {profile} --target HOST, with a HOST inside the VPN that answers ping (by name or address)"
        )));
    };
    let evidence = format!(
        "tunnel {} MTU {}; to {}: largest don't-fragment probe answered {largest} bytes; {} probes",
        m.tunnel, m.tunnel_mtu, m.target, m.probes
    );
    if largest >= m.tunnel_mtu {
        return Ok(format!(
            "mtu: the path to {} carries the tunnel's full MTU ({} bytes)",
            m.target, m.tunnel_mtu
        ));
    }
    if let Some((from, mtu)) = m.icmp {
        return Ok(format!(
            "mtu: the path to {} carries {largest} of the tunnel's {} bytes, and {from} says so \
             (ICMP \"fragmentation needed\", MTU {mtu}): Path MTU Discovery works, nothing to do",
            m.target, m.tunnel_mtu
        ));
    }
    let mut f = Finding::problem(
        Area::Mtu,
        format!(
            "MTU black hole: the path to {} carries {largest} bytes, the tunnel sends up to {}, and no router says so",
            m.target, m.tunnel_mtu
        ),
    )
    .evidence(evidence)
    .evidence(format!(
        "no ICMP \"fragmentation needed\" came back for {}..{} bytes",
        largest + 1,
        m.tunnel_mtu
    ))
    .why(
        "ping, DNS and small requests work, but anything that sends full-size packets (SSH after \
         the banner, git clone, a large psql result) stalls: the large packets vanish and \
         nothing tells the sender to make them smaller",
    )
    .fix(format!(
        "add `mtu = {largest}` at the top of {profile_file} (above the first [section]), then \
         `nsvpn down {profile} && nsvpn up {profile}`"
    ));
    if let Some(wg) = wg_quick {
        f = f.fix(format!(
            "`MTU = {largest}` in the [Interface] section of {wg}"
        ));
    }
    Err(f)
}

/// Probes by raw ICMP socket in the calling thread's namespace (a thread
/// that entered the profile's): echo requests with the don't-fragment bit
/// set, the kernel's path MTU cache ignored (IP_PMTUDISC_PROBE), so that
/// each size really goes out and a router's ICMP is seen.
pub struct IcmpProber {
    sock: OwnedFd,
    target: Ipv4Addr,
    id: u16,
    seq: u16,
    wait: Duration,
}

impl IcmpProber {
    pub fn new(target: Ipv4Addr, wait: Duration) -> Result<IcmpProber> {
        let sock = socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::Icmp,
        )
        .context("cannot open a raw ICMP socket (doctor needs root)")?;
        let v: nix::libc::c_int = nix::libc::IP_PMTUDISC_PROBE;
        // SAFETY: a valid socket and a c_int option value of the right size.
        let rc = unsafe {
            nix::libc::setsockopt(
                sock.as_raw_fd(),
                nix::libc::IPPROTO_IP,
                nix::libc::IP_MTU_DISCOVER,
                (&v as *const nix::libc::c_int).cast(),
                std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
            )
        };
        if rc != 0 {
            bail!(
                "cannot set don't-fragment on the probe socket: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(IcmpProber {
            sock,
            target,
            id: (std::process::id() as u16) ^ 0x6e73,
            seq: 0,
            wait,
        })
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request of `size` bytes once the IPv4 header is added.
pub fn echo_request(id: u16, seq: u16, size: u32) -> Vec<u8> {
    let mut p = vec![0u8; (size.max(HEADERS) - 20) as usize];
    p[0] = 8;
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p.iter_mut().enumerate().skip(8) {
        *b = i as u8;
    }
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// What an IPv4 packet a raw ICMP socket read says about probe (`id`,
/// `seq`) to `target`; None when it is about something else.
pub fn classify(pkt: &[u8], target: Ipv4Addr, id: u16, seq: u16) -> Option<Answer> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    let src = Ipv4Addr::new(*pkt.get(12)?, pkt[13], pkt[14], pkt[15]);
    let icmp = pkt.get(ihl..)?;
    let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
    let id_seq = |b: &[u8]| {
        b.len() >= 8
            && u16::from_be_bytes([b[4], b[5]]) == id
            && u16::from_be_bytes([b[6], b[7]]) == seq
    };
    match (kind, code) {
        (0, 0) if src == target && id_seq(icmp) => Some(Answer::Reply),
        (3, 4) => {
            let mtu = u32::from(u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]));
            let inner = icmp.get(8..)?;
            let iihl = usize::from(inner.first()? & 0x0f) * 4;
            let dst = Ipv4Addr::new(*inner.get(16)?, inner[17], inner[18], inner[19]);
            let echo = inner.get(iihl..)?;
            (dst == target && *inner.get(9)? == 1 && echo.first() == Some(&8) && id_seq(echo))
                .then_some(Answer::TooBig { from: src, mtu })
        }
        _ => None,
    }
}

impl Prober for IcmpProber {
    fn be_patient(&mut self) {
        self.wait = MAX_WAIT;
    }

    fn probe(&mut self, size: u32) -> Result<Answer> {
        self.seq = self.seq.wrapping_add(1);
        let pkt = echo_request(self.id, self.seq, size);
        let to = SockaddrIn::from(std::net::SocketAddrV4::new(self.target, 0));
        // Two copies at once: one lost packet does not pass for a size that
        // does not fit, and the search waits once per size, not twice.
        for _ in 0..COPIES {
            match sendto(self.sock.as_raw_fd(), &pkt, &to, MsgFlags::empty()) {
                Ok(_) => {}
                // Larger than the route allows here: the tunnel's own MTU.
                Err(nix::errno::Errno::EMSGSIZE) => return Ok(Answer::Nothing),
                Err(e) => {
                    return Err(anyhow::anyhow!(e)
                        .context(format!("cannot send a probe to {}", self.target)));
                }
            }
        }
        let sent = Instant::now();
        let deadline = sent + self.wait;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Answer::Nothing);
            }
            let mut fds = [nix::poll::PollFd::new(
                self.sock.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            if nix::poll::poll(&mut fds, ms).unwrap_or(0) == 0 {
                continue;
            }
            let Ok((n, _)) = recvfrom::<SockaddrIn>(self.sock.as_raw_fd(), &mut buf) else {
                continue;
            };
            if let Some(a) = classify(&buf[..n], self.target, self.id, self.seq) {
                // Later probes wait a few round trips, not a fixed time:
                // the search stays well under a second on a near path.
                if a == Answer::Reply {
                    self.wait = (sent.elapsed() * 4).clamp(MIN_WAIT, MAX_WAIT);
                }
                return Ok(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path that carries `path` bytes; a router says so when `icmp`.
    struct Path {
        tunnel: u32,
        path: u32,
        icmp: bool,
        reachable: bool,
        sent: Vec<u32>,
    }

    impl Prober for Path {
        fn probe(&mut self, size: u32) -> Result<Answer> {
            self.sent.push(size);
            Ok(if !self.reachable || size > self.tunnel {
                Answer::Nothing
            } else if size <= self.path {
                Answer::Reply
            } else if self.icmp {
                Answer::TooBig {
                    from: Ipv4Addr::new(10, 99, 0, 1),
                    mtu: self.path,
                }
            } else {
                Answer::Nothing
            })
        }
    }

    fn measure(tunnel: u32, path: u32, icmp: bool, reachable: bool) -> (Measure, Vec<u32>) {
        let mut p = Path {
            tunnel,
            path,
            icmp,
            reachable,
            sent: vec![],
        };
        let m = search(&mut p, "10.20.1.5".parse().unwrap(), "nsvt-alpha", tunnel).unwrap();
        (m, p.sent)
    }

    #[test]
    fn the_search_finds_every_path_mtu_exactly() {
        for path in [576, 1000, 1279, 1300, 1419] {
            for icmp in [false, true] {
                let (m, _) = measure(1420, path, icmp, true);
                assert_eq!(m.largest, Some(path), "path {path} icmp {icmp}");
                assert_eq!(m.icmp.is_some(), icmp);
            }
        }
        let (m, sent) = measure(1420, 1500, false, true);
        assert_eq!((m.largest, sent), (Some(1420), vec![SMALL, 1420]));
    }

    #[test]
    fn a_router_that_names_the_mtu_shortens_the_search() {
        let (m, sent) = measure(1420, 1300, true, true);
        assert_eq!(m.largest, Some(1300));
        assert_eq!(sent, vec![SMALL, 1420, 1300]);
        let (_, blind) = measure(1420, 1300, false, true);
        assert!(blind.len() > 6, "{blind:?}");
    }

    #[test]
    fn an_unreachable_target_is_not_measured() {
        let (m, sent) = measure(1420, 1300, false, false);
        assert_eq!(m.largest, None);
        assert_eq!(sent, vec![SMALL]);
    }

    #[test]
    fn the_verdicts() {
        let file = "/etc/nsvpn/profiles/alpha.toml";
        let wg = Some("/etc/wireguard/alpha.conf");
        let text = |tunnel, path, icmp, reachable| {
            let (m, _) = measure(tunnel, path, icmp, reachable);
            match judge(&m, "alpha", file, wg) {
                Ok(line) => format!("ok: {line}\n"),
                Err(f) => {
                    let mut r = super::super::Report::new("alpha");
                    r.findings.push(f);
                    super::super::render(&r)
                }
            }
        };
        insta::assert_snapshot!(
            [
                text(1420, 1500, false, true),
                text(1420, 1300, true, true),
                text(1420, 1300, false, true),
                text(1420, 1300, false, false),
            ]
            .join("\n")
        );
    }

    #[test]
    fn packets_are_built_and_read_back() {
        let p = echo_request(7, 9, 1300);
        assert_eq!(p.len() as u32 + 20, 1300);
        assert_eq!(checksum(&p), 0);
        let target = Ipv4Addr::new(10, 20, 1, 5);
        let mut reply = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 20, 1, 5, 10, 99, 0, 2,
        ];
        let mut icmp = p.clone();
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert_eq!(classify(&reply, target, 7, 9), Some(Answer::Reply));
        assert_eq!(classify(&reply, target, 7, 10), None);
        // A router's "fragmentation needed" quoting the probe.
        let mut err = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 99, 0, 1, 10, 99, 0, 2,
        ];
        err.extend_from_slice(&[3, 4, 0, 0, 0, 0, 0x05, 0x14]);
        err.extend_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 63, 1, 0, 0, 10, 99, 0, 2, 10, 20, 1, 5,
        ]);
        err.extend_from_slice(&p[..8]);
        assert_eq!(
            classify(&err, target, 7, 9),
            Some(Answer::TooBig {
                from: Ipv4Addr::new(10, 99, 0, 1),
                mtu: 1300
            })
        );
        assert_eq!(classify(&err, Ipv4Addr::new(10, 20, 1, 6), 7, 9), None);
    }
}
