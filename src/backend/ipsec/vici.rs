//! A small synchronous client of VICI, strongSwan's control protocol: a
//! unix socket carrying length-prefixed packets whose messages are trees of
//! sections, key/values and lists (documented in strongSwan's
//! `src/libcharon/plugins/vici/README.md`). nsvpn controls its charon with
//! it (load-conn, load-shared, initiate, list-sas, terminate,
//! reload-settings) and never reads `swanctl` output.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

// Packet types.
const CMD_REQUEST: u8 = 0;
const CMD_RESPONSE: u8 = 1;
const CMD_UNKNOWN: u8 = 2;
const EVENT_REGISTER: u8 = 3;
const EVENT_UNREGISTER: u8 = 4;
const EVENT_CONFIRM: u8 = 5;
const EVENT_UNKNOWN: u8 = 6;
const EVENT: u8 = 7;

// Message elements.
const SECTION_START: u8 = 1;
const SECTION_END: u8 = 2;
const KEY_VALUE: u8 = 3;
const LIST_START: u8 = 4;
const LIST_ITEM: u8 = 5;
const LIST_END: u8 = 6;

/// The largest packet nsvpn accepts (charon's own limit is 512 KiB).
const MAX_PACKET: usize = 512 * 1024;

/// One value of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Section(Message),
}

/// A VICI message: named values, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message(pub Vec<(String, Value)>);

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    /// Adds a key/value (builder style).
    pub fn kv(mut self, k: &str, v: impl AsRef<[u8]>) -> Message {
        self.0.push((k.into(), Value::Str(v.as_ref().to_vec())));
        self
    }

    pub fn list<I, S>(mut self, k: &str, items: I) -> Message
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let items = items.into_iter().map(|s| s.as_ref().to_vec()).collect();
        self.0.push((k.into(), Value::List(items)));
        self
    }

    pub fn section(mut self, k: &str, m: Message) -> Message {
        self.0.push((k.into(), Value::Section(m)));
        self
    }

    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    /// A key/value as text.
    pub fn str(&self, k: &str) -> Option<String> {
        match self.get(k)? {
            Value::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }

    /// A list as text (a missing list is empty).
    pub fn strs(&self, k: &str) -> Vec<String> {
        match self.get(k) {
            Some(Value::List(items)) => items
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn sub(&self, k: &str) -> Option<&Message> {
        match self.get(k)? {
            Value::Section(m) => Some(m),
            _ => None,
        }
    }

    /// The sections of this message, by name.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Message)> {
        self.0.iter().filter_map(|(n, v)| match v {
            Value::Section(m) => Some((n.as_str(), m)),
            _ => None,
        })
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        encode_into(self, &mut out)?;
        Ok(out)
    }

    pub fn decode(data: &[u8]) -> Result<Message> {
        let mut pos = 0;
        let m = decode_section(data, &mut pos, false)?;
        if pos != data.len() {
            bail!("VICI message has trailing bytes");
        }
        Ok(m)
    }
}

/// The message as text, one key per line, sections indented (for tests
/// and `-vvv`).
impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn write(m: &Message, f: &mut std::fmt::Formatter<'_>, depth: usize) -> std::fmt::Result {
            let pad = "  ".repeat(depth);
            let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
            for (k, v) in &m.0 {
                match v {
                    Value::Str(s) => writeln!(f, "{pad}{k} = {}", text(s))?,
                    Value::List(items) => writeln!(
                        f,
                        "{pad}{k} = [{}]",
                        items.iter().map(|i| text(i)).collect::<Vec<_>>().join(", ")
                    )?,
                    Value::Section(s) => {
                        writeln!(f, "{pad}{k} {{")?;
                        write(s, f, depth + 1)?;
                        writeln!(f, "{pad}}}")?;
                    }
                }
            }
            Ok(())
        }
        write(self, f, 0)
    }
}

fn name(out: &mut Vec<u8>, n: &str) -> Result<()> {
    let len = u8::try_from(n.len()).map_err(|_| anyhow!("VICI name {n:?} is too long"))?;
    out.push(len);
    out.extend_from_slice(n.as_bytes());
    Ok(())
}

fn value(out: &mut Vec<u8>, v: &[u8]) -> Result<()> {
    let len = u16::try_from(v.len()).map_err(|_| anyhow!("VICI value is too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(v);
    Ok(())
}

fn encode_into(m: &Message, out: &mut Vec<u8>) -> Result<()> {
    for (k, v) in &m.0 {
        match v {
            Value::Str(s) => {
                out.push(KEY_VALUE);
                name(out, k)?;
                value(out, s)?;
            }
            Value::List(items) => {
                out.push(LIST_START);
                name(out, k)?;
                for i in items {
                    out.push(LIST_ITEM);
                    value(out, i)?;
                }
                out.push(LIST_END);
            }
            Value::Section(s) => {
                out.push(SECTION_START);
                name(out, k)?;
                encode_into(s, out)?;
                out.push(SECTION_END);
            }
        }
    }
    Ok(())
}

fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8]> {
    let end = pos
        .checked_add(n)
        .filter(|e| *e <= data.len())
        .ok_or_else(|| anyhow!("VICI message is truncated"))?;
    let s = &data[*pos..end];
    *pos = end;
    Ok(s)
}

fn take_name(data: &[u8], pos: &mut usize) -> Result<String> {
    let len = take(data, pos, 1)?[0] as usize;
    Ok(String::from_utf8_lossy(take(data, pos, len)?).into_owned())
}

fn take_value(data: &[u8], pos: &mut usize) -> Result<Vec<u8>> {
    let b = take(data, pos, 2)?;
    let len = u16::from_be_bytes([b[0], b[1]]) as usize;
    Ok(take(data, pos, len)?.to_vec())
}

fn decode_section(data: &[u8], pos: &mut usize, nested: bool) -> Result<Message> {
    let mut m = Message::new();
    while *pos < data.len() {
        let t = take(data, pos, 1)?[0];
        match t {
            SECTION_START => {
                let n = take_name(data, pos)?;
                let s = decode_section(data, pos, true)?;
                m.0.push((n, Value::Section(s)));
            }
            SECTION_END if nested => return Ok(m),
            KEY_VALUE => {
                let n = take_name(data, pos)?;
                let v = take_value(data, pos)?;
                m.0.push((n, Value::Str(v)));
            }
            LIST_START => {
                let n = take_name(data, pos)?;
                let mut items = Vec::new();
                loop {
                    match take(data, pos, 1)?[0] {
                        LIST_ITEM => items.push(take_value(data, pos)?),
                        LIST_END => break,
                        other => bail!("VICI list holds element type {other}"),
                    }
                }
                m.0.push((n, Value::List(items)));
            }
            other => bail!("VICI message holds element type {other} where it may not"),
        }
    }
    if nested {
        bail!("VICI section is not closed");
    }
    Ok(m)
}

/// A connection to charon's VICI socket.
pub struct Client {
    sock: UnixStream,
}

impl Client {
    /// Connects; every read waits at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client> {
        let sock = UnixStream::connect(path).with_context(|| {
            format!("cannot connect to charon's VICI socket {}", path.display())
        })?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        Ok(Client { sock })
    }

    fn send(&mut self, kind: u8, label: Option<&str>, msg: Option<&Message>) -> Result<()> {
        let mut p = vec![kind];
        if let Some(l) = label {
            name(&mut p, l)?;
        }
        if let Some(m) = msg {
            p.extend(m.encode()?);
        }
        let len = u32::try_from(p.len()).map_err(|_| anyhow!("VICI packet too large"))?;
        self.sock.write_all(&len.to_be_bytes())?;
        self.sock.write_all(&p)?;
        Ok(())
    }

    /// One packet: its type, its name (for named types) and its message.
    fn recv(&mut self) -> Result<(u8, Option<String>, Message)> {
        let mut len = [0u8; 4];
        self.sock
            .read_exact(&mut len)
            .context("charon did not answer on its VICI socket")?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_PACKET {
            bail!("charon sent a VICI packet of {len} bytes");
        }
        let mut buf = vec![0u8; len];
        self.sock.read_exact(&mut buf)?;
        let kind = buf[0];
        let mut pos = 1;
        let label = if kind == EVENT {
            Some(take_name(&buf, &mut pos)?)
        } else {
            None
        };
        let msg = Message::decode(&buf[pos..])?;
        Ok((kind, label, msg))
    }

    /// A command and its response.
    pub fn call(&mut self, cmd: &str, msg: &Message) -> Result<Message> {
        self.call_streaming(cmd, None, msg, |_| {})
    }

    /// A command whose progress comes as events named `event` (list-sas'
    /// `list-sa`, initiate's `control-log`), each handed to `on_event`.
    pub fn call_streaming(
        &mut self,
        cmd: &str,
        event: Option<&str>,
        msg: &Message,
        mut on_event: impl FnMut(&Message),
    ) -> Result<Message> {
        if let Some(e) = event {
            self.send(EVENT_REGISTER, Some(e), None)?;
            self.expect_confirm(e)?;
        }
        self.send(CMD_REQUEST, Some(cmd), Some(msg))?;
        let response = loop {
            match self.recv()? {
                (EVENT, Some(l), m) if Some(l.as_str()) == event => on_event(&m),
                (EVENT, _, _) => {}
                (CMD_RESPONSE, _, m) => break m,
                (CMD_UNKNOWN, _, _) => bail!("charon does not know the VICI command {cmd:?}"),
                (t, _, _) => bail!("charon answered {cmd:?} with VICI packet type {t}"),
            }
        };
        if let Some(e) = event {
            self.send(EVENT_UNREGISTER, Some(e), None)?;
            // Events already queued may come before the confirmation.
            self.expect_confirm(e)?;
        }
        Ok(response)
    }

    fn expect_confirm(&mut self, event: &str) -> Result<()> {
        loop {
            match self.recv()? {
                (EVENT_CONFIRM, _, _) => return Ok(()),
                (EVENT_UNKNOWN, _, _) => bail!("charon does not know the VICI event {event:?}"),
                (EVENT, _, _) => {}
                (t, _, _) => bail!("charon answered an event registration with type {t}"),
            }
        }
    }
}

/// A response's `success`/`errmsg`, as a result.
pub fn check(cmd: &str, m: &Message) -> Result<()> {
    if m.str("success").as_deref() == Some("yes") {
        Ok(())
    } else {
        Err(anyhow!(
            "charon refused {cmd}: {}",
            m.str("errmsg").unwrap_or_else(|| "no reason given".into())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_encode_as_documented_and_read_back() {
        // The example of strongSwan's VICI README, element by element.
        let m = Message::new().kv("key1", "value1").section(
            "section1",
            Message::new()
                .section("sub-section", Message::new().kv("key2", "value2"))
                .list("list1", ["item1", "item2"]),
        );
        let bytes = m.encode().unwrap();
        let mut want = vec![3, 4];
        want.extend(b"key1");
        want.extend([0, 6]);
        want.extend(b"value1");
        want.extend([1, 8]);
        want.extend(b"section1");
        want.extend([1, 11]);
        want.extend(b"sub-section");
        want.extend([3, 4]);
        want.extend(b"key2");
        want.extend([0, 6]);
        want.extend(b"value2");
        want.push(2);
        want.extend([4, 5]);
        want.extend(b"list1");
        want.extend([5, 0, 5]);
        want.extend(b"item1");
        want.extend([5, 0, 5]);
        want.extend(b"item2");
        want.extend([6, 2]);
        assert_eq!(bytes, want);
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.str("key1").as_deref(), Some("value1"));
        let s = back.sub("section1").unwrap();
        assert_eq!(s.strs("list1"), ["item1", "item2"]);
        assert_eq!(
            s.sub("sub-section").unwrap().str("key2").as_deref(),
            Some("value2")
        );
    }

    #[test]
    fn broken_messages_are_errors() {
        for bad in [
            &[3u8, 4, b'k'][..],       // name cut short
            &[3, 1, b'k', 0, 9, b'v'], // value cut short
            &[1, 1, b's'],             // section never closed
            &[2],                      // end without start
            &[4, 1, b'l', 3],          // a key/value inside a list
            &[9],                      // unknown element
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(256);
        assert!(Message::new().kv(&long, "v").encode().is_err());
    }

    #[test]
    fn a_response_says_success_or_why_not() {
        assert!(check("initiate", &Message::new().kv("success", "yes")).is_ok());
        let e = check(
            "initiate",
            &Message::new()
                .kv("success", "no")
                .kv("errmsg", "establishing CHILD_SA 'nsvpn' failed"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "charon refused initiate: establishing CHILD_SA 'nsvpn' failed"
        );
    }
}
