//! Start-up checks through the real binary: a refusal is one line naming the
//! variable and a non-zero exit; a doubtful value is a warning.

use std::process::{Command, Output};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tiktok-webhook");

fn check_config(database_url: &str, extra: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("check-config")
        .current_dir(dir.path())
        .env_clear()
        .env("APP_ENV", "production")
        .env("DATABASE_URL", database_url)
        .env("TIKTOK_APP_KEY", APP_KEY)
        .env("TIKTOK_APP_SECRET", APP_SECRET)
        .env("API_TOKENS", API_TOKEN);
    for (k, v) in extra {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn a_database_under_tmp_is_a_warning_and_the_check_passes() {
    let output = check_config("sqlite:///tmp/tiktok-check/db.sqlite", &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("warning: DATABASE_URL: "), "{stdout}");
    assert!(!stdout.contains(APP_SECRET) && !stdout.contains(API_TOKEN));
}

#[test]
fn a_database_in_memory_or_a_weak_token_is_a_one_line_error_naming_the_variable() {
    let cases = [
        (
            "sqlite:///dev/shm/tiktok/db.sqlite",
            ("API_TOKENS", API_TOKEN),
            "DATABASE_URL",
        ),
        (
            "sqlite:///var/lib/x/db.sqlite",
            ("API_TOKENS", "aaaaaaaaaaaaaaaaaaaa"),
            "API_TOKENS",
        ),
        (
            "sqlite:///var/lib/x/db.sqlite",
            ("FRONTEND_URL", "*"),
            "FRONTEND_URL",
        ),
    ];
    for (url, extra, variable) in cases {
        let output = check_config(url, &[extra]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("error: {variable}: ")),
            "{stderr}"
        );
    }
}
