//! Writes the man pages and shell completions the Debian package ships
//! into target/<profile>/assets/ (cargo-deb's `target/release/assets/...`),
//! from the same command-line definition the binary parses with: src/cli.rs
//! and src/docs.rs are included here as they are.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
mod cli {
    include!("src/cli.rs");
}
#[allow(dead_code)]
mod docs {
    include!("src/docs.rs");
}

fn write(path: &Path, data: &[u8]) {
    // Unchanged files keep their time stamps.
    if std::fs::read(path).ok().as_deref() == Some(data) {
        return;
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn main() {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=src/docs.rs");
    println!("cargo:rerun-if-changed=build.rs");
    // OUT_DIR is target/<profile>/build/nsvpn-<hash>/out.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let profile_dir = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is 3 levels below the profile");
    let assets = profile_dir.join("assets");
    let man = assets.join("man");
    let completions = assets.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
    }
    for (name, text) in docs::man_pages() {
        write(&man.join(name), &text);
    }
    for shell in [
        cli::CompletionShell::Bash,
        cli::CompletionShell::Zsh,
        cli::CompletionShell::Fish,
    ] {
        write(
            &completions.join(docs::completion_file(shell)),
            &docs::completions(shell),
        );
    }
}
