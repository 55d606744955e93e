//! The shared black-box cases (tests/data/cases, copied from the fixtures)
//! run against the built binary by tests/run_cases.py, once on SQLite and
//! once on PostgreSQL (`--postgres`, a fresh database per case file). Needs
//! python3 (and psql for PostgreSQL); a machine without them fails here
//! loudly rather than skipping.

mod support;

use std::process::Command;

use support::process::BIN;

fn run_cases(file: &str, postgres_admin: Option<&str>) {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = Command::new("python3");
    command
        .arg(format!("{root}/tests/run_cases.py"))
        .args(["--bin", BIN, "--verbose"]);
    if let Some(url) = postgres_admin {
        command.args(["--postgres", url]);
    }
    command.arg(format!("{root}/tests/data/cases/{file}"));
    let output = command
        .output()
        .expect("python3 must be installed to run the shared cases");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let database = postgres_admin.map_or("SQLite", |_| "PostgreSQL");
    assert!(
        output.status.success() && last.ends_with(" 0 failed"),
        "cases in {file} failed on {database}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One test per case file and database: `sqlite::name`, `postgres::name`.
macro_rules! case_files {
    ($($test:ident => $file:literal),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    super::run_cases($file, None);
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    if crate::support::postgres::available(stringify!($test)) {
                        let admin = crate::support::postgres::admin_url();
                        super::run_cases($file, admin.as_deref());
                    }
                }
            )+
        }
    };
}

case_files!(
    signature_cases_pass => "signature.json",
    dedupe_and_order_cases_pass => "dedupe-and-order.json",
    api_cases_pass => "api.json",
    topic_cases_pass => "topics.json",
    body_cases_pass => "bodies.json",
    limit_cases_pass => "limits.json",
);
