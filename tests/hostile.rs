//! The hostile-profile corpus (`tests/hostile/<case>/`): broken and malicious
//! profiles, each of which must be refused by the checks `up` runs before it
//! touches anything, with one error that names the file and the field. The
//! errors are snapshots; the integration suite runs the real binary on the
//! same corpus as root and checks the exit status, that stderr is exactly
//! this error, and that the machine is unchanged.
//!
//! A case directory holds a profile `x.toml` and the files it names, or a
//! file `name` with the profile name to ask for (for hostile names).

use std::path::{Path, PathBuf};

use nsvpn::lifecycle as up;
use nsvpn::profile::Profile;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// The profile name a case asks for.
pub fn name_of(case: &Path) -> String {
    std::fs::read_to_string(case.join("name"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_else(|_| "x".into())
}

#[test]
fn every_hostile_profile_is_refused_with_one_clear_error() {
    let cases = cases();
    assert!(cases.len() >= 20, "the corpus is missing");
    let repo = env!("CARGO_MANIFEST_DIR");
    for case in cases {
        let id = case.file_name().unwrap().to_string_lossy().into_owned();
        let name = name_of(&case);
        let err = match Profile::load(&case, &name).and_then(|p| up::check(&p)) {
            Ok(()) => panic!("{id}: accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            !err.contains("NSVPNSECRETHASH"),
            "{id}: a secret in the error: {err}"
        );
        // One error: its first line says where (a list of every problem in
        // a client's config may follow, one per line).
        let first = err.lines().next().unwrap_or_default();
        if case.join("x.toml").exists() {
            assert!(
                first.contains("x.toml"),
                "{id}: the error names no file: {err}"
            );
            assert!(
                first.contains("field `")
                    || first.contains("line ")
                    || first.contains("cannot read"),
                "{id}: the error names no field: {err}"
            );
        }
        insta::with_settings!({snapshot_suffix => id.clone(), prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("hostile", err.replace(repo, "$REPO"));
        });
    }
}
