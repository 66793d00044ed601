// Man pages and shell completions, generated from the one command line
// definition (src/cli.rs). `nsvpn completions <shell>` prints them at run
// time; build.rs includes this file (and cli.rs) to write the same text
// into target/<profile>/assets/ for the Debian package, so it uses nothing
// but std, clap, clap_complete, clap_mangen and `crate::cli`, and has no
// inner attributes.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionShell};

/// The section of every page: nsvpn is an administration command.
pub const MAN_SECTION: &str = "8";

/// What every page ends with, after the parts clap_mangen writes.
const SEE_ALSO: &str = "ip-netns(8), wg(8), wireguard-go(8), openvpn(8), openconnect(8), \
                        systemd.exec(5)";

/// The man pages: `nsvpn.8` and one `nsvpn-<command>.8` per command (the
/// hidden `hook` has none), as (file name, roff text).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    // `nsvpn help` needs no page of its own.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let source = format!("nsvpn {version}");
    let mut pages = Vec::new();

    let mut main = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section(MAN_SECTION)
        .source(source.clone())
        .manual("nsvpn")
        .render(&mut main)
        .expect("writing to a Vec cannot fail");
    main.extend_from_slice(main_page_tail().as_bytes());
    pages.push((format!("nsvpn.{MAN_SECTION}"), main));

    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("nsvpn-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().display_name(name.clone()))
            .section(MAN_SECTION)
            .source(source.clone())
            .manual("nsvpn")
            .render(&mut page)
            .expect("writing to a Vec cannot fail");
        page.extend_from_slice(
            format!(".SH \"SEE ALSO\"\nnsvpn({MAN_SECTION}), {SEE_ALSO}\n").as_bytes(),
        );
        pages.push((format!("{name}.{MAN_SECTION}"), page));
    }
    pages
}

/// FILES, the systemd unit and SEE ALSO of nsvpn(8), in roff.
fn main_page_tail() -> String {
    let files = [
        (
            "/etc/nsvpn/profiles/\\fIprofile\\fR.toml",
            "A profile: one TOML file per VPN (examples in /usr/share/doc/nsvpn/examples).",
        ),
        (
            "/run/netns/nsvpn\\-\\fIprofile\\fR",
            "The profile's network namespace (ip netns list and ip netns exec see it).",
        ),
        (
            "/etc/netns/nsvpn\\-\\fIprofile\\fR/",
            "resolv.conf, hosts and nsswitch.conf seen inside the profile.",
        ),
        (
            "/run/nsvpn/\\fIprofile\\fR/",
            "What up made, and the VPN client's log.",
        ),
    ];
    let mut s = String::from(".SH FILES\n");
    for (path, what) in files {
        s.push_str(&format!(".TP\n{path}\n{what}\n"));
    }
    s.push_str(
        ".SH SYSTEMD\n\
         \\fBsystemctl start nsvpn@\\fIprofile\\fR brings a profile up, \
         \\fBsystemctl stop nsvpn@\\fIprofile\\fR takes it down (ending what still runs \
         inside), \\fBsystemctl enable nsvpn@\\fIprofile\\fR brings it up at boot.\n",
    );
    s.push_str(&format!(
        ".SH \"SEE ALSO\"\n{}, {SEE_ALSO}\n",
        Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| format!(
                "nsvpn\\-{}({MAN_SECTION})",
                s.get_name().replace('-', "\\-")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s
}

/// The command line as completions offer it: clap_complete offers hidden
/// commands too, so this copy leaves out the hook (run by VPN clients only).
fn completion_command() -> clap::Command {
    let full = Cli::command();
    clap::Command::new("nsvpn")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommand_required(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// The completion script for `shell`.
pub fn completions(shell: CompletionShell) -> Vec<u8> {
    let mut cmd = completion_command();
    let mut out = Vec::new();
    match shell {
        CompletionShell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "nsvpn", &mut out)
        }
        CompletionShell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "nsvpn", &mut out)
        }
        CompletionShell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "nsvpn", &mut out)
        }
    }
    out
}

/// Where each shell's completion file goes in the package (and its name
/// under target/<profile>/assets/completions/).
pub fn completion_file(shell: CompletionShell) -> &'static str {
    match shell {
        CompletionShell::Bash => "nsvpn",
        CompletionShell::Zsh => "_nsvpn",
        CompletionShell::Fish => "nsvpn.fish",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> String {
        let pages = man_pages();
        let (_, text) = pages.iter().find(|(n, _)| n == name).unwrap();
        String::from_utf8(text.clone()).unwrap()
    }

    /// The part of a page up to DESCRIPTION: title, NAME and SYNOPSIS.
    fn head(page: &str) -> String {
        page.split(".SH DESCRIPTION").next().unwrap().to_string()
    }

    #[test]
    fn one_page_per_command_and_none_for_the_hook() {
        let names: Vec<String> = man_pages().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "nsvpn.8",
                "nsvpn-up.8",
                "nsvpn-down.8",
                "nsvpn-exec.8",
                "nsvpn-shell.8",
                "nsvpn-status.8",
                "nsvpn-list.8",
                "nsvpn-forward.8",
                "nsvpn-doctor.8",
                "nsvpn-unit.8",
                "nsvpn-podman-args.8",
                "nsvpn-completions.8",
            ]
        );
    }

    #[test]
    fn man_nsvpn_name_and_synopsis() {
        insta::assert_snapshot!(head(&page("nsvpn.8")));
    }

    #[test]
    fn man_nsvpn_up_name_and_synopsis() {
        insta::assert_snapshot!(head(&page("nsvpn-up.8")));
    }

    #[test]
    fn man_nsvpn_ends_with_files_systemd_and_see_also() {
        let p = page("nsvpn.8");
        insta::assert_snapshot!(&p[p.find(".SH FILES").unwrap()..]);
    }

    #[test]
    fn completions_bash_head() {
        let text = String::from_utf8(completions(CompletionShell::Bash)).unwrap();
        let head: Vec<&str> = text.lines().take(12).collect();
        insta::assert_snapshot!(head.join("\n"));
        assert!(text.contains("complete -F _nsvpn -o nosort -o bashdefault -o default nsvpn"));
    }

    #[test]
    fn completions_zsh_and_fish_heads() {
        let zsh = String::from_utf8(completions(CompletionShell::Zsh)).unwrap();
        let fish = String::from_utf8(completions(CompletionShell::Fish)).unwrap();
        let head = |t: &str, n| t.lines().take(n).collect::<Vec<_>>().join("\n");
        insta::assert_snapshot!(format!(
            "===== zsh\n{}\n===== fish\n{}",
            head(&zsh, 6),
            head(&fish, 6)
        ));
        // The hidden hook is offered by none of them.
        let bash = String::from_utf8(completions(CompletionShell::Bash)).unwrap();
        for t in [&bash, &zsh, &fish] {
            assert!(!t.contains("hook"), "{t}");
        }
    }
}
