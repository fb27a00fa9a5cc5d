//! The ONNX-derived operator conformance set (a copy of ../shared/conformance in
//! tests/data/conformance) run through kiln's public ops and autograd: every case must pass.

mod common;

use std::path::Path;

use kiln::conformance::{run_suite, Suite};

#[test]
fn every_conformance_case_passes() {
    let ctx = common::ctx();
    // Poisoned outputs would only slow this down; the kernels' own tests cover poisoning.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let suite = Suite::load(&dir).unwrap();
    assert!(
        suite.cases.len() >= 175,
        "the set has {} cases",
        suite.cases.len()
    );
    let verdicts = run_suite(ctx, &suite, None, |_, _, _| {});
    let failures: Vec<String> = verdicts.iter().flat_map(|v| v.failures.clone()).collect();
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    assert!(
        failures.is_empty(),
        "{passed} passed, {} failed:\n{}",
        verdicts.len() - passed,
        failures.join("\n")
    );
}

#[test]
fn corrupt_conformance_files_are_rejected_with_the_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let json = std::fs::read(dir.join("cases.json")).unwrap();
    let st = std::fs::read(dir.join("cases.safetensors")).unwrap();
    let err = Suite::from_bytes(&json[..json.len() / 2], &st)
        .err()
        .unwrap();
    assert!(err.to_string().contains("cases.json"), "{err}");
    let err = Suite::from_bytes(&json, &st[..st.len() / 2]).err().unwrap();
    assert!(err.to_string().contains("cases.safetensors"), "{err}");
}
