//! Writes the man pages and shell completions the Debian package ships
//! into target/<profile>/assets/ (cargo-deb's `target/release/assets/...`),
//! from the same command-line definition the binary parses with: src/cli.rs
//! and src/docs.rs are included here as they are. Also links GCC's
//! unwinder statically into the binaries (see `static_unwinder`).

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

/// Rust's std needs an unwinder (for backtraces; nsvpn aborts on panic),
/// which on glibc comes from libgcc_s.so.1. Loading that library costs
/// every run of nsvpn its relocations and its constructor, whose `cpuid`
/// probes are slow in a VM: about 100 us of each `nsvpn exec` (measured,
/// README "Performance"). GCC's static unwinder (libgcc_eh.a, the one
/// `gcc -static-libgcc` uses), taken whole before std asks for it, leaves
/// libgcc_s unneeded, and `--as-needed` drops it.
fn static_unwinder() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--push-state,--whole-archive,-Bstatic,-lgcc_eh,--pop-state"
        );
    }
}

fn main() {
    static_unwinder();
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
