//! `nsvpn doctor`: what is wrong with the host's or a profile's routes,
//! DNS, MTU, tunnel and leftovers, with the evidence and the fix.
//!
//! Each area has its file: the judgement is a pure function over typed
//! inputs (links, addresses, routes, files, probe answers), tested on its
//! own; `gather` reads the machine and calls them. Doctor only reads and
//! probes: it changes nothing.

pub mod dns;
pub mod gather;
pub mod leftovers;
pub mod mtu;
pub mod routes;
pub mod tunnel;

use serde::Serialize;

/// The area a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Mtu,
    Routes,
    Dns,
    Tunnel,
    Leftovers,
}

impl Area {
    pub fn word(self) -> &'static str {
        match self {
            Area::Mtu => "mtu",
            Area::Routes => "routes",
            Area::Dns => "dns",
            Area::Tunnel => "tunnel",
            Area::Leftovers => "leftovers",
        }
    }
}

/// A problem makes doctor exit 1; a notice is worth knowing (who owns the
/// host's DNS) but breaks nothing by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Problem,
    Notice,
}

/// One thing doctor found: what is wrong, the evidence, why it matters and
/// the exact fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub area: Area,
    pub severity: Severity,
    pub what: String,
    /// The routes, addresses, sizes and files involved, one per line.
    pub evidence: Vec<String>,
    pub why: String,
    /// Commands, or profile or wg-quick lines; one per line.
    pub fix: Vec<String>,
}

impl Finding {
    pub fn problem(area: Area, what: impl Into<String>) -> Finding {
        Finding {
            area,
            severity: Severity::Problem,
            what: what.into(),
            evidence: Vec::new(),
            why: String::new(),
            fix: Vec::new(),
        }
    }

    pub fn notice(area: Area, what: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Notice,
            ..Finding::problem(area, what)
        }
    }

    pub fn evidence(mut self, e: impl Into<String>) -> Finding {
        self.evidence.push(e.into());
        self
    }

    pub fn why(mut self, w: impl Into<String>) -> Finding {
        self.why = w.into();
        self
    }

    pub fn fix(mut self, f: impl Into<String>) -> Finding {
        self.fix.push(f.into());
        self
    }
}

/// What doctor looked at and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// "host", or the profile's name.
    pub scope: String,
    /// The areas checked, in order.
    pub checked: Vec<Area>,
    /// Measurements that are fine but worth a line (the path MTU).
    pub fine: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(scope: &str) -> Report {
        Report {
            scope: scope.into(),
            checked: Vec::new(),
            fine: Vec::new(),
            findings: Vec::new(),
        }
    }

    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }

    /// Doctor's exit status: 1 when something is wrong.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.problems() > 0)
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The text report: one line when all is well, else each finding with its
/// evidence, why and fix.
pub fn render(r: &Report) -> String {
    let areas: Vec<&str> = r.checked.iter().map(|a| a.word()).collect();
    let problems = r.problems();
    let notices = r.findings.len() - problems;
    let mut s = String::new();
    let head = if problems == 0 {
        format!("nsvpn doctor {}: nothing wrong", r.scope)
    } else {
        format!("nsvpn doctor {}: {}", r.scope, plural(problems, "problem"))
    };
    let extra = if notices > 0 {
        format!(", {}", plural(notices, "notice"))
    } else {
        String::new()
    };
    let checked = if areas.is_empty() {
        String::new()
    } else {
        format!(" (checked {})", areas.join(", "))
    };
    s.push_str(&format!("{head}{extra}{checked}\n"));
    for f in &r.fine {
        s.push_str(&format!("  ok: {f}\n"));
    }
    for f in &r.findings {
        let word = match f.severity {
            Severity::Problem => "PROBLEM",
            Severity::Notice => "notice",
        };
        s.push_str(&format!("\n{word} [{}] {}\n", f.area.word(), f.what));
        for (i, e) in f.evidence.iter().enumerate() {
            let k = if i == 0 { "evidence:" } else { "" };
            let e = e.replace('\n', "\n            ");
            s.push_str(&format!("  {k:<9} {e}\n"));
        }
        if !f.why.is_empty() {
            s.push_str(&format!("  {:<9} {}\n", "why:", f.why));
        }
        for (i, x) in f.fix.iter().enumerate() {
            let k = if i == 0 { "fix:" } else { "or:" };
            s.push_str(&format!("  {k:<9} {x}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_well_is_one_line() {
        let mut r = Report::new("host");
        r.checked = vec![Area::Routes, Area::Dns, Area::Leftovers];
        assert_eq!(
            render(&r),
            "nsvpn doctor host: nothing wrong (checked routes, dns, leftovers)\n"
        );
        assert_eq!(r.exit_code(), 0);
    }

    #[test]
    fn a_notice_alone_keeps_exit_zero_and_a_problem_makes_it_one() {
        let mut r = Report::new("host");
        r.checked = vec![Area::Dns];
        r.findings
            .push(Finding::notice(Area::Dns, "n").why("w").fix("f"));
        assert_eq!(r.exit_code(), 0);
        r.findings.push(
            Finding::problem(Area::Leftovers, "p")
                .evidence("e1")
                .evidence("e2")
                .fix("a")
                .fix("b"),
        );
        assert_eq!(r.exit_code(), 1);
        insta::assert_snapshot!(render(&r));
    }
}
