//! `nsvpn completions <shell>`: print a shell completion script.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::CompletionShell;
use crate::docs;

/// Needs no privilege and reads no profile: the script comes from the
/// command line's definition alone (the same text the package installs).
pub fn run(shell: CompletionShell) -> Result<()> {
    std::io::stdout()
        .lock()
        .write_all(&docs::completions(shell))
        .context("cannot write the completion script to stdout")
}
