//! `nsvpn list`: known profiles and whether each is up.

use std::path::Path;

use anyhow::Result;

use crate::caller::{Caller, Mode};
use crate::commands::status;
use crate::lifecycle::{Health, assess};
use crate::profile::{self, Profile};

pub struct Row {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub description: String,
}

pub fn rows(dir: &Path) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for name in profile::list_names(dir)? {
        let state = match assess(&name).0 {
            Health::Up(_) => "up",
            Health::Reconnecting(..) => "reconnecting",
            Health::Broken(_) => "broken",
            Health::Down => "down",
        };
        let row = match Profile::load(dir, &name) {
            Ok(p) => Row {
                state: state.into(),
                kind: p.vpn.kind().into(),
                description: p.description.unwrap_or_default(),
                name,
            },
            Err(e) => Row {
                state: if state == "down" { "invalid" } else { state }.into(),
                kind: "-".into(),
                description: format!("{e:#}").lines().next().unwrap_or("").to_string(),
                name,
            },
        };
        out.push(row);
    }
    Ok(out)
}

pub fn render(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no profiles\n".into();
    }
    let w = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max("PROFILE".len());
    let sw = rows
        .iter()
        .map(|r| r.state.len())
        .max()
        .unwrap_or(0)
        .max("STATE".len());
    let mut s = format!(
        "{:w$}  {:11}  {:sw$}  DESCRIPTION\n",
        "PROFILE", "KIND", "STATE"
    );
    for r in rows {
        s.push_str(
            format!(
                "{:w$}  {:11}  {:sw$}  {}",
                r.name, r.kind, r.state, r.description
            )
            .trim_end(),
        );
        s.push('\n');
    }
    s
}

pub fn run(caller: &Caller, dir: &Path) -> Result<()> {
    let mut rows = rows(dir)?;
    if caller.mode == Mode::FileCaps {
        rows.retain(|r| status::admitted(caller, Profile::load(dir, &r.name).ok().as_ref()));
    }
    print!("{}", render(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let rows = vec![
            Row {
                name: "acme".into(),
                kind: "wireguard".into(),
                state: "up".into(),
                description: "ACME customer network".into(),
            },
            Row {
                name: "corp-eu".into(),
                kind: "openconnect".into(),
                state: "down".into(),
                description: String::new(),
            },
            Row {
                name: "x".into(),
                kind: "-".into(),
                state: "invalid".into(),
                description: "profile \"x\": field `vpn.kind`: ...".into(),
            },
        ];
        insta::assert_snapshot!(render(&rows));
        assert_eq!(render(&[]), "no profiles\n");
    }
}
