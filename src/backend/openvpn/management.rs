//! openvpn's management interface: nsvpn starts every openvpn with one on a
//! root-only unix socket of the profile, and asks it how the connection
//! stands (`state all`: connected, or reconnecting since when and why).
//! openvpn's hook runs only when a tunnel comes up, so without this nsvpn
//! would not see a connection that is down and being retried.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// One line of openvpn's state history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLine {
    /// Seconds since the epoch.
    pub at: u64,
    /// CONNECTING, WAIT, AUTH, GET_CONFIG, ASSIGN_IP, ADD_ROUTES, CONNECTED,
    /// RECONNECTING, EXITING, RESOLVE, TCP_CONNECT, AUTH_PENDING.
    pub state: String,
    /// For RECONNECTING the reason (ping-restart, connection-reset...).
    pub detail: String,
}

/// How the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connected {
        since: u64,
    },
    /// Not connected now: connecting for the first time, or again after a
    /// connection was lost.
    Reconnecting {
        since: u64,
        /// What openvpn is doing now (WAIT, AUTH, RESOLVE...).
        now: String,
        /// Why the connection was lost (openvpn's word), if it was.
        reason: Option<String>,
    },
}

/// Reads the lines of a `state all` reply.
pub fn parse_states(reply: &str) -> Vec<StateLine> {
    reply
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .take_while(|l| *l != "END")
        .filter(|l| !l.starts_with('>'))
        .filter_map(|l| {
            let mut f = l.split(',');
            let at = f.next()?.parse().ok()?;
            let state = f.next()?.to_string();
            let detail = f.next().unwrap_or("").to_string();
            Some(StateLine { at, state, detail })
        })
        .collect()
}

/// Where the history says the connection stands.
pub fn connection(states: &[StateLine]) -> Option<Connection> {
    let last = states.last()?;
    if last.state == "CONNECTED" {
        return Some(Connection::Connected { since: last.at });
    }
    let after = states
        .iter()
        .rposition(|s| s.state == "CONNECTED")
        .map_or(0, |i| i + 1);
    let first = &states[after];
    Some(Connection::Reconnecting {
        since: first.at,
        now: last.state.clone(),
        reason: (first.state == "RECONNECTING" && !first.detail.is_empty())
            .then(|| first.detail.clone()),
    })
}

/// Asks the openvpn behind `socket` for its state history. Bounded: a busy
/// or stuck openvpn costs at most about a second.
pub fn query(socket: &Path) -> Result<Vec<StateLine>> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach openvpn's management socket {}",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_millis(800)))?;
    s.set_write_timeout(Some(Duration::from_millis(800)))?;
    s.write_all(b"state all\n")?;
    let mut reply = String::new();
    let mut r = BufReader::new(&s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)
            .context("openvpn's management interface did not answer")?
            == 0
        {
            bail!("openvpn closed its management connection before answering");
        }
        if line.trim_end() == "END" {
            break;
        }
        reply.push_str(&line);
    }
    Ok(parse_states(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    // As openvpn 2.6 answers `state all` (the greeting comes first).
    const CONNECTED: &str = ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n\
        1764062000,CONNECTING,,,,,,,\r\n\
        1764062000,WAIT,,,,,,,\r\n\
        1764062001,AUTH,,,,,,,\r\n\
        1764062001,GET_CONFIG,,,,,,,\r\n\
        1764062001,ASSIGN_IP,,10.8.0.2,,,,,\r\n\
        1764062001,CONNECTED,SUCCESS,10.8.0.2,203.0.113.10,1194,,,\r\nEND\r\n";

    #[test]
    fn connected_since_the_last_connected_line() {
        let s = parse_states(CONNECTED);
        assert_eq!(s.len(), 6);
        assert_eq!(
            connection(&s),
            Some(Connection::Connected { since: 1764062001 })
        );
    }

    #[test]
    fn reconnecting_since_the_line_after_the_last_connected() {
        let reply = format!(
            "{}1764062100,RECONNECTING,ping-restart,,,,,,\r\n1764062101,WAIT,,,,,,,\r\nEND\r\n",
            CONNECTED.trim_end_matches("END\r\n")
        );
        assert_eq!(
            connection(&parse_states(&reply)),
            Some(Connection::Reconnecting {
                since: 1764062100,
                now: "WAIT".into(),
                reason: Some("ping-restart".into())
            })
        );
        // Never connected: connecting since the first line.
        let first = "1764062000,CONNECTING,,,,,,,\n1764062005,WAIT,,,,,,,\nEND\n";
        assert_eq!(
            connection(&parse_states(first)),
            Some(Connection::Reconnecting {
                since: 1764062000,
                now: "WAIT".into(),
                reason: None
            })
        );
        assert_eq!(connection(&[]), None);
    }
}
