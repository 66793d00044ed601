//! `nsvpn shell` under bash or zsh shows the profile in the prompt, as
//! virtualenv and `poetry shell` do: `(alpha) ` before the user's own
//! prompt, which (with the rest of the user's rc files) stays as it is.
//!
//! The rc files nsvpn provides live in `/etc/nsvpn-shell/`, which exists only
//! in the shell's own view of `/etc`: the exec's overlay on `/etc` carries
//! it in its top layer (see `exec.rs`, step 6, and `overlay.rs`: the layer
//! is kept in the profile's run directory, which `down` removes). So they
//! are root's, on a read-only mount no one can write, readable by the user,
//! and nothing of them is left on the machine once the profile is down.
//! Without the overlay, the shell runs as it would without nsvpn.
//!
//! - bash: `--rcfile /etc/nsvpn-shell/bashrc`, which reads `~/.bashrc` as
//!   bash would (bash reads `/etc/bash.bashrc` before any rc file), then
//!   prefixes `PS1`.
//! - zsh: `ZDOTDIR=/etc/nsvpn-shell`, whose `.zshenv` puts the user's own
//!   `ZDOTDIR` back (unset, or the one nsvpn's caller had) and reads the
//!   user's `.zshenv`, which may set `ZDOTDIR` itself; an interactive shell
//!   then comes back for `.zshrc`, which restores the user's `ZDOTDIR`,
//!   reads their `.zshrc` and prefixes `PROMPT`. `/etc/zsh/*` are read by
//!   zsh itself, as always.
//!
//! Other shells get only `NSVPN_PROFILE`, which every command has. A prompt
//! rebuilt before each line by a theme (starship, powerlevel10k...) can show
//! `$NSVPN_PROFILE` itself.

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// The directory of the rc files, as the shell sees it.
pub const DIR: &str = "/etc/nsvpn-shell";

/// What a shell needs to show the profile in its prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The rc files: (path relative to `/etc`, contents).
    pub files: Vec<(PathBuf, String)>,
    /// The shell's command line and environment that use them.
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
}

/// The prompt files for `shell` (bash or zsh, by name), given the plain
/// shell's `argv` and `env`; None for any other shell.
pub fn prompt(shell: &Path, profile: &str, argv: &[CString], env: &[CString]) -> Option<Prompt> {
    let file = |name: &str, text: String| (Path::new("nsvpn-shell").join(name), text);
    match shell.file_name()?.to_str()? {
        "bash" => {
            let mut argv = argv.to_vec();
            argv.push(c"--rcfile".to_owned());
            argv.push(CString::new(format!("{DIR}/bashrc")).ok()?);
            Some(Prompt {
                files: vec![file("bashrc", bashrc(profile))],
                argv,
                env: env.to_vec(),
            })
        }
        "zsh" => Some(Prompt {
            files: vec![file(".zshenv", zshenv()), file(".zshrc", zshrc(profile))],
            argv: argv.to_vec(),
            env: zsh_env(env),
        }),
        _ => None,
    }
}

/// `(alpha) `: profile names are `[a-z0-9-]`, nothing a prompt expands.
fn prefix(profile: &str) -> String {
    format!("({profile}) ")
}

fn bashrc(profile: &str) -> String {
    format!(
        "# nsvpn shell: bash reads this instead of ~/.bashrc (it has read /etc/bash.bashrc\n\
         # already). It exists only in this shell's view of /etc.\n\
         if [ -f ~/.bashrc ]; then\n  . ~/.bashrc\nfi\n\
         PS1=\"{}${{PS1-}}\"\n",
        prefix(profile)
    )
}

fn zshenv() -> String {
    format!(
        "# nsvpn shell: zsh reads this first because nsvpn pointed ZDOTDIR here. It\n\
         # puts back the user's own ZDOTDIR and reads the user's .zshenv; an\n\
         # interactive shell comes back here for .zshrc. It exists only in this\n\
         # shell's view of /etc.\n\
         if (( ${{+_NSVPN_ZDOTDIR}} )); then\n  ZDOTDIR=$_NSVPN_ZDOTDIR\n  unset _NSVPN_ZDOTDIR\n\
         else\n  unset ZDOTDIR\nfi\n\
         if [[ -f ${{ZDOTDIR:-$HOME}}/.zshenv ]]; then\n  source ${{ZDOTDIR:-$HOME}}/.zshenv\nfi\n\
         if [[ -o interactive ]]; then\n\
         \x20 if (( ${{+ZDOTDIR}} )); then _nsvpn_zdotdir=$ZDOTDIR; fi\n\
         \x20 ZDOTDIR={DIR}\nfi\n"
    )
}

fn zshrc(profile: &str) -> String {
    format!(
        "# nsvpn shell: the user's own ZDOTDIR and .zshrc, then the profile in the\n\
         # prompt. It exists only in this shell's view of /etc.\n\
         if (( ${{+_nsvpn_zdotdir}} )); then\n  ZDOTDIR=$_nsvpn_zdotdir\n  unset _nsvpn_zdotdir\n\
         else\n  unset ZDOTDIR\nfi\n\
         if [[ -f ${{ZDOTDIR:-$HOME}}/.zshrc ]]; then\n  source ${{ZDOTDIR:-$HOME}}/.zshrc\nfi\n\
         PROMPT=\"{}${{PROMPT}}\"\n",
        prefix(profile)
    )
}

/// zsh's environment: ZDOTDIR points at nsvpn's files; the caller's own
/// ZDOTDIR (root's shell keeps its environment) waits in _NSVPN_ZDOTDIR.
fn zsh_env(env: &[CString]) -> Vec<CString> {
    let mut out: Vec<CString> = Vec::with_capacity(env.len() + 1);
    for v in env {
        match v.to_bytes().strip_prefix(b"ZDOTDIR=") {
            Some(own) => {
                let mut saved = b"_NSVPN_ZDOTDIR=".to_vec();
                saved.extend_from_slice(own);
                out.extend(CString::new(saved).ok());
            }
            None if v.to_bytes().starts_with(b"_NSVPN_ZDOTDIR=") => {}
            None => out.push(v.clone()),
        }
    }
    out.extend(CString::new(format!("ZDOTDIR={DIR}")).ok());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: &[&str]) -> Vec<CString> {
        v.iter().map(|s| CString::new(*s).unwrap()).collect()
    }

    fn show(p: &Prompt) -> String {
        let mut out = format!("argv: {:?}\nenv: {:?}\n", p.argv, p.env);
        for (path, text) in &p.files {
            out.push_str(&format!(
                "--- {}\n{text}",
                Path::new("/etc").join(path).display()
            ));
        }
        out
    }

    #[test]
    fn bash_reads_the_users_bashrc_then_prefixes_ps1() {
        let env = c(&["HOME=/home/alice", "NSVPN_PROFILE=alpha"]);
        let p = prompt(Path::new("/bin/bash"), "alpha", &c(&["/bin/bash"]), &env).unwrap();
        insta::assert_snapshot!(show(&p));
    }

    #[test]
    fn zsh_reads_the_users_files_through_zdotdir() {
        let env = c(&["HOME=/home/alice", "NSVPN_PROFILE=alpha"]);
        let p = prompt(
            Path::new("/usr/bin/zsh"),
            "alpha",
            &c(&["/usr/bin/zsh"]),
            &env,
        )
        .unwrap();
        insta::assert_snapshot!(show(&p));
    }

    /// Root's own shell keeps its environment: its ZDOTDIR is kept aside
    /// for .zshenv to put back, and a stale _NSVPN_ZDOTDIR never passes.
    #[test]
    fn the_callers_zdotdir_waits_aside() {
        let env = c(&["ZDOTDIR=/root/.zsh", "_NSVPN_ZDOTDIR=/stale", "TERM=xterm"]);
        let p = prompt(Path::new("/bin/zsh"), "alpha", &c(&["/bin/zsh"]), &env).unwrap();
        assert_eq!(
            p.env,
            c(&[
                "_NSVPN_ZDOTDIR=/root/.zsh",
                "TERM=xterm",
                "ZDOTDIR=/etc/nsvpn-shell"
            ])
        );
    }

    #[test]
    fn other_shells_get_only_nsvpn_profile() {
        for sh in ["/bin/sh", "/bin/dash", "/usr/bin/fish", "/bin/rbash", "/"] {
            assert_eq!(prompt(Path::new(sh), "alpha", &c(&[sh]), &[]), None, "{sh}");
        }
    }
}
