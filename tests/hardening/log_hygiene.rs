//! Acceptance 3: the shared cases run with `LOG_FORMAT=json`, plus a case
//! whose bodies carry a buyer's name and address, and then the server's logs
//! are searched for anything secret or personal.

use std::{path::Path, process::Command};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tiktok-webhook");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Personal data from the fixtures (the order-detail sample of TikTok's API).
const PERSONAL: &[&str] = &[
    "Elliot Marsh",
    "Marsh",
    "Juniper Row",
    "LS6 2QT",
    "w3k9f2qlzx0example",
    "leave with the neighbour",
];

/// A case file of our own: bodies full of personal data, sent signed, with a
/// wrong signature, unsigned, and as an invalid body; then read back.
fn personal_cases() -> Value {
    let body = r#"{"type":3,"tts_notification_id":"7441099000000000001","shop_id":"7495109900000000001","timestamp":{{now}},"data":{"order_id":"578109900000000001","update_time":{{now}},"recipient_address":{"name":"Elliot Marsh","full_address":"Flat 3, 14 Juniper Row, Leeds, LS6 2QT","buyer_email":"w3k9f2qlzx0example@scs2.tiktokw.eu","buyer_message":"Please leave with the neighbour at no. 16 if I'm out."}}}"#;
    let send = |sign: &str, body: &str| json!({"send": {"body": body, "sign": sign}, "expect": {}});
    json!({
        "about": "personal data in bodies must not reach the logs",
        "app_key": "logkey",
        "app_secret": "log-secret-5e1f0c77a9-d00d",
        "api_token": "log-api-token-0123456789",
        "cases": [{
            "id": "personal-data-stays-out-of-logs",
            "steps": [
                send("valid", body),
                send("wrong", body),
                send("missing", body),
                send("valid", "[\"Elliot Marsh\", \"Juniper Row\", \"LS6 2QT\"]"),
                {"get": "/api/events/7441099000000000001", "expect": {"status": 200}},
                {"get": "/api/orders/578109900000000001", "expect": {"status": 200}}
            ]
        }]
    })
}

/// Copies every shared case file, and ours, with `LOG_FORMAT=json`.
fn case_files(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    let mut secrets = Vec::new();
    let shared = std::fs::read_dir(format!("{ROOT}/tests/data/cases")).unwrap();
    let mut specs: Vec<Value> = shared
        .map(|entry| {
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap()
        })
        .collect();
    specs.push(personal_cases());
    for (n, mut spec) in specs.into_iter().enumerate() {
        spec["env"]["LOG_FORMAT"] = json!("json");
        for key in ["app_secret", "api_token", "previous_secret"] {
            if let Some(secret) = spec[key].as_str() {
                secrets.push(secret.to_owned());
            }
        }
        if let Some(tokens) = spec["env"]["API_TOKENS"].as_str() {
            secrets.extend(tokens.split(',').map(str::to_owned));
        }
        let path = dir.join(format!("cases-{n}.json"));
        std::fs::write(&path, spec.to_string()).unwrap();
        files.push(path.display().to_string());
    }
    (files, secrets)
}

#[test]
fn logs_of_the_shared_cases_hold_no_secret_signature_or_buyer_data() {
    let dir = tempfile::tempdir().unwrap();
    let (files, secrets) = case_files(dir.path());
    let output = Command::new("python3")
        .arg(format!("{ROOT}/tests/run_cases.py"))
        .args(["--bin", BIN, "--keep"])
        .args(&files)
        .output()
        .expect("python3 must be installed to run the shared cases");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cases failed:\n{stdout}\n{stderr}");
    let kept: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("# kept "))
        .collect();
    assert_eq!(kept.len(), files.len(), "{stderr}");

    let mut logs = String::new();
    for folder in &kept {
        for name in ["server.out", "server.err"] {
            logs += &std::fs::read_to_string(Path::new(folder).join(name)).unwrap_or_default();
        }
        let _ = std::fs::remove_dir_all(folder);
    }
    check_lines_are_json_with_request_spans(&logs);
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret or token is in the logs"
        );
    }
    for personal in PERSONAL {
        assert!(!logs.contains(personal), "`{personal}` is in the logs");
    }
    // A signature is 64 hex digits; the only such run allowed is the digest
    // inside an event id `sha256:<hex>`.
    for (start, run) in hex_runs(&logs) {
        let event_id = logs[..start].ends_with("sha256:");
        assert!(
            run < 64 || event_id,
            "a signature-like value is in the logs"
        );
    }
}

/// Start and length of every run of hexadecimal digits.
fn hex_runs(text: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_ascii_hexdigit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i - s));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

fn check_lines_are_json_with_request_spans(logs: &str) {
    let mut spans = 0;
    let mut with_event = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("not a JSON log line: {}", &line[..line.len().min(80)]));
        let span = &entry["span"];
        if span["request_id"].is_string() && span["route"].is_string() && !span["status"].is_null()
        {
            assert!(span["latency_ms"].is_number());
            spans += 1;
            if span["event_id"].is_string() && span["shop_id"].is_string() {
                with_event += 1;
            }
        }
    }
    assert!(spans > 100, "only {spans} request lines");
    assert!(
        with_event > 50,
        "only {with_event} lines name the event and shop"
    );
}
