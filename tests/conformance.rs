//! The ONNX-derived operator conformance set (a copy of ../shared/conformance in
//! tests/data/conformance) and the extra set of comparison, selection and indexing cases
//! (tests/data/conformance-extra), run by `kiln conformance` through kiln's public ops and
//! autograd: every case must pass. The runner's parsing is tested in its module, src/cli/conformance.rs.

use std::path::Path;
use std::process::Command;

fn kiln(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the kiln binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `kiln conformance DIR` and checks that at least `cases` passed and none failed.
fn the_set_passes(dir: &str, cases: usize) {
    let (ok, stdout, stderr) = kiln(&["conformance", dir]);
    let summary = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output; stderr:\n{stderr}"));
    let counts: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [passed, failed] = counts[..] else {
        panic!("last line {summary:?} is not `N passed, M failed`; stderr:\n{stderr}");
    };
    assert!(passed >= cases, "{dir} has {passed} passing cases");
    assert!(ok && failed == 0, "{stdout}\n{stderr}");
}

#[test]
fn every_conformance_case_passes() {
    the_set_passes("tests/data/conformance", 175);
}

#[test]
fn every_extra_conformance_case_passes() {
    the_set_passes("tests/data/conformance-extra", 38);
}

#[test]
fn a_missing_conformance_folder_is_an_error_naming_the_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/no-such-set");
    let (ok, _, stderr) = kiln(&["conformance", dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("no-such-set") && stderr.contains("cases.json"),
        "{stderr}"
    );
}
