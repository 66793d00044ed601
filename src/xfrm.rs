//! The host's XFRM database over netlink (NETLINK_XFRM), for one job: the
//! IPsec kernel path's `down` removes the SAs and policies bound to a
//! profile's `if_id` that a killed charon left behind (the kernel keeps
//! them; deleting the XFRM interface does not remove them). The one place
//! that builds and reads XFRM messages: the crate for them on crates.io
//! (netlink-packet-xfrm) is built on an older netlink-packet-core than
//! nsvpn's, so the few structures needed are laid out here, after
//! `<linux/xfrm.h>`.

use anyhow::{Context, Result, bail};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_XFRM};

const XFRM_MSG_DELSA: u16 = 0x11;
const XFRM_MSG_GETSA: u16 = 0x12;
const XFRM_MSG_NEWSA: u16 = 0x10;
const XFRM_MSG_NEWPOLICY: u16 = 0x13;
const XFRM_MSG_DELPOLICY: u16 = 0x14;
const XFRM_MSG_GETPOLICY: u16 = 0x15;
const XFRMA_MARK: u16 = 21;
const XFRMA_POLICY_TYPE: u16 = 16;
const XFRMA_IF_ID: u16 = 31;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;

/// sizeof(struct xfrm_selector).
const SELECTOR: usize = 56;
/// sizeof(struct xfrm_usersa_info): selector, id (24), saddr (16),
/// lifetime_cfg (64), lifetime_cur (32), stats (12), seq, reqid, family,
/// mode, replay_window, flags, padded to 8.
const USERSA_INFO: usize = 224;
/// sizeof(struct xfrm_userpolicy_info): selector, lifetime_cfg,
/// lifetime_cur, priority, index, dir, action, flags, share, padded to 8.
const USERPOLICY_INFO: usize = 168;
/// Offsets in xfrm_userpolicy_info.
const POLICY_INDEX: usize = SELECTOR + 64 + 32 + 4;
const POLICY_DIR: usize = POLICY_INDEX + 4;

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A netlink message: header, the fixed part, attributes.
fn message(kind: u16, flags: u16, seq: u32, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = fixed.to_vec();
    body.resize(align(body.len()), 0);
    for (t, v) in attrs {
        body.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&t.to_ne_bytes());
        body.extend_from_slice(v);
        body.resize(align(body.len()), 0);
    }
    let mut m = Vec::with_capacity(16 + body.len());
    m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&body);
    m
}

/// The attributes after a fixed part of `fixed` bytes.
fn attrs(payload: &[u8], fixed: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = align(fixed);
    while at + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[at], payload[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([payload[at + 2], payload[at + 3]]) & 0x3fff;
        if len < 4 || at + len > payload.len() {
            break;
        }
        out.push((kind, &payload[at + 4..at + len]));
        at += align(len);
    }
    out
}

fn if_id_of(a: &[(u16, &[u8])]) -> Option<u32> {
    a.iter()
        .find(|(t, v)| *t == XFRMA_IF_ID && v.len() >= 4)
        .map(|(_, v)| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
}

struct Xfrm {
    sock: Socket,
    seq: u32,
}

impl Xfrm {
    fn open() -> Result<Xfrm> {
        let mut sock = Socket::new(NETLINK_XFRM).context("cannot open an XFRM netlink socket")?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Xfrm { sock, seq: 0 })
    }

    /// Sends a request and reads the answers up to the end of a dump or
    /// the acknowledgement: the messages' (type, payload).
    fn call(
        &mut self,
        kind: u16,
        flags: u16,
        fixed: &[u8],
        a: &[(u16, &[u8])],
    ) -> Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let dump = flags & NLM_F_DUMP != 0;
        self.sock
            .send(&message(kind, flags | NLM_F_REQUEST, self.seq, fixed, a), 0)?;
        let mut out = Vec::new();
        loop {
            let (buf, _) = self.sock.recv_from_full()?;
            let mut at = 0;
            while at + 16 <= buf.len() {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into()?) as usize;
                let t = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into()?);
                if len < 16 || at + len > buf.len() {
                    bail!("a broken XFRM netlink message");
                }
                let payload = &buf[at + 16..at + len];
                at += align(len);
                if seq != self.seq {
                    continue;
                }
                match t {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(payload[..4].try_into()?);
                        if code == 0 && !dump {
                            return Ok(out);
                        }
                        return Err(std::io::Error::from_raw_os_error(-code).into());
                    }
                    t => out.push((t, payload.to_vec())),
                }
            }
        }
    }
}

/// Deletes the host's XFRM states and policies bound to `if_id`: (states,
/// policies) deleted.
pub fn remove_if_id(if_id: u32) -> Result<(usize, usize)> {
    let mut x = Xfrm::open()?;
    let mut states = 0;
    for (t, p) in x.call(XFRM_MSG_GETSA, NLM_F_DUMP, &[0; 4], &[])? {
        if t != XFRM_MSG_NEWSA || p.len() < USERSA_INFO {
            continue;
        }
        let a = attrs(&p, USERSA_INFO);
        if if_id_of(&a) != Some(if_id) {
            continue;
        }
        // struct xfrm_usersa_id: daddr, spi, family, proto; from the
        // state's id (daddr, spi, proto) and family.
        let id = &p[SELECTOR..SELECTOR + 24];
        let family = &p[SELECTOR + 24 + 16 + 64 + 32 + 12 + 8..][..2];
        let mut sa_id = id[..20].to_vec();
        sa_id.extend_from_slice(family);
        sa_id.push(id[20]);
        sa_id.push(0);
        let mark: Vec<(u16, &[u8])> = a
            .iter()
            .filter(|(t, _)| *t == XFRMA_MARK)
            .copied()
            .collect();
        match x.call(XFRM_MSG_DELSA, NLM_F_ACK, &sa_id, &mark) {
            Ok(_) => states += 1,
            // Gone meanwhile (charon's last delete, an expiry).
            Err(e) if is_gone(&e) => crate::vlog!("XFRM: a state of if_id {if_id:#x} is gone: {e}"),
            Err(e) => return Err(e.context("cannot delete an XFRM state")),
        }
    }
    let mut policies = 0;
    for (t, p) in x.call(XFRM_MSG_GETPOLICY, NLM_F_DUMP, &[0; 4], &[])? {
        if t != XFRM_MSG_NEWPOLICY || p.len() < USERPOLICY_INFO {
            continue;
        }
        let a = attrs(&p, USERPOLICY_INFO);
        if if_id_of(&a) != Some(if_id) {
            continue;
        }
        // struct xfrm_userpolicy_id: selector, index, dir; found by index
        // (with the if_id and type, which the lookup matches too).
        let mut pol_id = p[..SELECTOR].to_vec();
        pol_id.extend_from_slice(&p[POLICY_INDEX..POLICY_INDEX + 4]);
        pol_id.push(p[POLICY_DIR]);
        pol_id.resize(SELECTOR + 8, 0);
        let keep: Vec<(u16, &[u8])> = a
            .iter()
            .filter(|(t, _)| [XFRMA_IF_ID, XFRMA_MARK, XFRMA_POLICY_TYPE].contains(t))
            .copied()
            .collect();
        match x.call(XFRM_MSG_DELPOLICY, NLM_F_ACK, &pol_id, &keep) {
            Ok(_) => policies += 1,
            Err(e) if is_gone(&e) => {}
            Err(e) => return Err(e.context("cannot delete an XFRM policy")),
        }
    }
    Ok((states, policies))
}

fn is_gone(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .and_then(|e| e.raw_os_error())
        .is_some_and(|c| c == nix::libc::ENOENT || c == nix::libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_and_its_attributes() {
        let m = message(
            XFRM_MSG_DELSA,
            NLM_F_ACK,
            7,
            &[1, 2, 3],
            &[(XFRMA_IF_ID, &5u32.to_ne_bytes())],
        );
        // header 16, fixed 3 padded to 4, attribute 4 + 4.
        assert_eq!(m.len(), 16 + 4 + 8);
        assert_eq!(u32::from_ne_bytes(m[..4].try_into().unwrap()), 28);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), XFRM_MSG_DELSA);
        let a = attrs(&m[16..], 3);
        assert_eq!(if_id_of(&a), Some(5));
        assert_eq!(if_id_of(&attrs(&m[16..], 12)), None);
    }
}
