//! The shared black-box cases (tests/data/cases, copied from the fixtures)
//! run against the built binary by tests/run_cases.py. Needs python3; a
//! machine without it fails here loudly rather than skipping.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tiktok-webhook");

fn run_cases(file: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = Command::new("python3");
    command
        .arg(format!("{root}/tests/run_cases.py"))
        .args(["--bin", BIN, "--verbose"])
        .arg(format!("{root}/tests/data/cases/{file}"));
    let output = command
        .output()
        .expect("python3 must be installed to run the shared cases");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        output.status.success() && last.ends_with(" 0 failed"),
        "cases in {file} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn signature_cases_pass() {
    run_cases("signature.json");
}

#[test]
fn dedupe_and_order_cases_pass() {
    run_cases("dedupe-and-order.json");
}

#[test]
fn api_cases_pass() {
    run_cases("api.json");
}

#[test]
fn topic_cases_pass() {
    run_cases("topics.json");
}

#[test]
fn body_cases_pass() {
    run_cases("bodies.json");
}

#[test]
fn limit_cases_pass() {
    run_cases("limits.json");
}
