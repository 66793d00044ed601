//! `nsvpn list`: known profiles and whether each is up.

use std::path::Path;

use anyhow::Result;

use crate::caller::{Caller, Mode};
use crate::lifecycle::{assess, state_word};
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
        let health = assess(&name).health;
        let row = match Profile::load(dir, &name) {
            Ok(p) => Row {
                state: state_word(&health, true).into(),
                kind: p.vpn.kind().name().into(),
                description: p.description.unwrap_or_default(),
                name,
            },
            Err(e) => Row {
                state: state_word(&health, false).into(),
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
        rows.retain(|r| caller.admitted(Profile::load(dir, &r.name).ok().as_ref()));
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

    /// A profile whose file does not load is "invalid" (the word `status`
    /// uses too, from the same function); one whose wg-quick file is missing
    /// loads (`list` never looks at the files a profile names: they may be
    /// root's alone) and is "down": `up` is what refuses it.
    #[test]
    fn a_profile_that_does_not_load_is_invalid_and_a_missing_config_is_not_looked_at() {
        let dir = std::env::temp_dir().join(format!("nsvpn-list-invalid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("nsvpn-unit-bad.toml"),
            "[vpn]\nkind = \"wireguard\"\nconfig = \"a.conf\"\ncolour = 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("nsvpn-unit-nocfg.toml"),
            "[vpn]\nkind = \"wireguard\"\nconfig = \"missing.conf\"\n",
        )
        .unwrap();
        let rows = rows(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let got: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.kind.as_str(), r.state.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("nsvpn-unit-bad", "-", "invalid"),
                ("nsvpn-unit-nocfg", "wireguard", "down")
            ]
        );
        assert!(
            rows[0].description.contains("field `vpn.colour`"),
            "{}",
            rows[0].description
        );
    }
}
