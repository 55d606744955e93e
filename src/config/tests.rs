//! Loading and checking settings from maps of variables.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn production(extra: &[(&str, &str)]) -> Vars {
    let mut v = vars(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "sqlite:///tmp/never-opened.db"),
        ("TIKTOK_APP_KEY", "key"),
        ("TIKTOK_APP_SECRET", "secret"),
        ("API_TOKENS", "0123456789abcdef"),
    ]);
    v.extend(vars(extra));
    v
}

#[test]
fn production_settings_load_with_defaults() {
    let s = Settings::load(&production(&[])).unwrap();
    assert_eq!(s.port, 3001);
    assert_eq!(s.webhook_max_age, Duration::from_secs(24 * 3600));
    assert_eq!(s.rate_limit_window, Duration::from_secs(15 * 60));
    assert_eq!(s.body_limit, 4 * 1024 * 1024);
}

#[test]
fn production_refuses_a_missing_secret_naming_it() {
    let mut v = production(&[]);
    v.remove("TIKTOK_APP_SECRET");
    let e = Settings::load(&v).unwrap_err();
    assert_eq!(e.variable, "TIKTOK_APP_SECRET");
}

#[test]
fn production_refuses_a_short_api_token() {
    let e = Settings::load(&production(&[("API_TOKENS", "short")])).unwrap_err();
    assert_eq!(e.variable, "API_TOKENS");
}

#[test]
fn node_env_is_a_fallback_for_app_env() {
    let mut v = production(&[]);
    v.remove("APP_ENV");
    v.insert("NODE_ENV".into(), "production".into());
    assert!(Settings::load(&v).unwrap().is_production());
}

#[test]
fn db_variables_build_a_postgres_url() {
    let v = production(&[
        ("DB_HOST", "db"),
        ("DB_PASSWORD", "pw"),
        ("DB_NAME", "shop"),
    ]);
    let mut v = v;
    v.remove("DATABASE_URL");
    let s = Settings::load(&v).unwrap();
    assert_eq!(s.database.masked(), "postgres://postgres:***@db:5432/shop");
}

#[test]
fn durations_accept_the_documented_forms() {
    assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86400)));
    assert_eq!(parse_duration("soon"), None);
}

#[test]
fn a_bad_value_names_its_variable() {
    let e = Settings::load(&production(&[("WEBHOOK_MAX_AGE", "soon")])).unwrap_err();
    assert_eq!(e.variable, "WEBHOOK_MAX_AGE");
    let e = Settings::load(&production(&[("PORT", "http")])).unwrap_err();
    assert_eq!(e.variable, "PORT");
}

#[test]
fn check_config_output_never_holds_secrets() {
    let s = Settings::load(&production(&[
        ("TIKTOK_APP_SECRET", "hunter2-secret"),
        (
            "FORWARD_URL",
            "https://bob:hunter2pass@hooks.test/in?token=sekrit",
        ),
        ("WEBHOOK_SECRET", "whsec_c2VjcmV0LTAxMjM0NTY3ODk="),
    ]))
    .unwrap();
    let described = format!("{:?}", s.describe());
    assert!(!described.contains("hunter2pass") && !described.contains("sekrit"));
    assert!(described.contains("https://hooks.test/in?***"));
    let text = format!("{:?} {:?}", s.describe(), s);
    assert!(!text.contains("hunter2-secret"));
    assert!(!text.contains("0123456789abcdef"));
}

#[test]
fn development_generates_credentials_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/db.sqlite", dir.path().display());
    let v = vars(&[("DATABASE_URL", &url)]);
    let first = Settings::load(&v).unwrap();
    let second = Settings::load(&v).unwrap();
    assert!(!first.app_key.is_empty());
    assert_eq!(first.app_key, second.app_key);
    assert_eq!(
        first.app_secret.expose_secret(),
        second.app_secret.expose_secret()
    );
    assert!(first.generated.any());
}

#[test]
fn production_refuses_a_missing_app_key_naming_it() {
    let mut v = production(&[]);
    v.remove("TIKTOK_APP_KEY");
    assert_eq!(Settings::load(&v).unwrap_err().variable, "TIKTOK_APP_KEY");
}

#[test]
fn production_refuses_missing_api_tokens() {
    let mut v = production(&[]);
    v.remove("API_TOKENS");
    assert_eq!(Settings::load(&v).unwrap_err().variable, "API_TOKENS");
}

#[test]
fn production_refuses_a_long_but_repetitive_token() {
    for weak in [
        "aaaaaaaaaaaaaaaaaaaa",
        "abababababababababab",
        "0123401234012340",
    ] {
        let e = Settings::load(&production(&[("API_TOKENS", weak)])).unwrap_err();
        assert_eq!(e.variable, "API_TOKENS", "{weak}");
        assert!(
            !e.to_string().contains(weak),
            "the error must not echo the token"
        );
    }
}

#[test]
fn production_refuses_an_api_token_that_is_the_app_secret() {
    let same = "shared-0123456789abcdef";
    let e = Settings::load(&production(&[
        ("API_TOKENS", same),
        ("TIKTOK_APP_SECRET", same),
    ]))
    .unwrap_err();
    assert_eq!(e.variable, "API_TOKENS");
    let e = Settings::load(&production(&[
        ("API_TOKENS", same),
        ("TIKTOK_APP_SECRET_PREVIOUS", same),
    ]))
    .unwrap_err();
    assert_eq!(e.variable, "API_TOKENS");
}

#[test]
fn production_refuses_forwarding_without_a_strong_webhook_secret() {
    let forward = ("FORWARD_URL", "https://example.com/hook");
    let e = Settings::load(&production(&[forward])).unwrap_err();
    assert_eq!(e.variable, "WEBHOOK_SECRET");
    let e = Settings::load(&production(&[forward, ("WEBHOOK_SECRET", "short")])).unwrap_err();
    assert_eq!(e.variable, "WEBHOOK_SECRET");
    let ok = ("WEBHOOK_SECRET", "forward-0123456789abcdef");
    assert!(Settings::load(&production(&[forward, ok])).is_ok());
}

#[test]
fn production_refuses_sqlite_in_memory_backed_folders() {
    for url in [
        "sqlite:///dev/shm/x/db.sqlite",
        "sqlite:///run/tiktok/db.sqlite",
    ] {
        let e = Settings::load(&production(&[("DATABASE_URL", url)])).unwrap_err();
        assert_eq!(e.variable, "DATABASE_URL", "{url}");
    }
}

#[test]
fn an_explicit_opt_out_allows_an_ephemeral_database() {
    let v = production(&[
        ("DATABASE_URL", "sqlite:///dev/shm/x/db.sqlite"),
        ("ALLOW_EPHEMERAL_DATABASE", "true"),
    ]);
    assert!(Settings::load(&v).is_ok());
}

#[test]
fn sqlite_under_tmp_in_production_is_a_warning_not_an_error() {
    // The shared case runner starts production servers on /tmp databases.
    let s = Settings::load(&production(&[(
        "DATABASE_URL",
        "sqlite:///tmp/cases/db.sqlite",
    )]))
    .unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(s.warnings[0].starts_with("DATABASE_URL: "));
    let s = Settings::load(&production(&[(
        "DATABASE_URL",
        "sqlite:///var/lib/x/db.sqlite",
    )]))
    .unwrap();
    assert!(s.warnings.is_empty());
}

#[test]
fn legacy_headers_in_production_are_a_warning() {
    let s = Settings::load(&production(&[
        ("DATABASE_URL", "sqlite:///var/lib/x/db.sqlite"),
        ("LEGACY_SIGNATURE_HEADERS", "true"),
    ]))
    .unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(s.warnings[0].starts_with("LEGACY_SIGNATURE_HEADERS: "));
}

#[test]
fn frontend_url_must_be_one_origin() {
    let ok = Settings::load(&production(&[("FRONTEND_URL", "https://Shop.example.com")])).unwrap();
    assert_eq!(ok.frontend_url.as_deref(), Some("https://shop.example.com"));
    for bad in [
        "*",
        "shop.example.com",
        "https://shop.example.com/",
        "https://*.example.com",
    ] {
        let e = Settings::load(&production(&[("FRONTEND_URL", bad)])).unwrap_err();
        assert_eq!(e.variable, "FRONTEND_URL", "{bad}");
    }
}

#[test]
fn trust_proxy_takes_a_boolean_or_a_hop_count() {
    let hops = |v: &str| Settings::load(&production(&[("TRUST_PROXY", v)])).map(|s| s.trust_proxy);
    assert_eq!(Settings::load(&production(&[])).unwrap().trust_proxy, 0);
    assert_eq!(hops("false").unwrap(), 0);
    assert_eq!(hops("true").unwrap(), 1);
    assert_eq!(hops("2").unwrap(), 2);
    assert_eq!(hops("maybe").unwrap_err().variable, "TRUST_PROXY");
}

#[test]
fn intake_timeout_must_be_shorter_than_the_request_timeout() {
    let v = production(&[("INTAKE_TIMEOUT", "5s"), ("REQUEST_TIMEOUT", "5s")]);
    assert_eq!(Settings::load(&v).unwrap_err().variable, "INTAKE_TIMEOUT");
}

#[test]
fn rate_limits_must_allow_something() {
    let e = Settings::load(&production(&[("RATE_LIMIT_MAX", "0")])).unwrap_err();
    assert_eq!(e.variable, "RATE_LIMIT_MAX");
    let e = Settings::load(&production(&[("RATE_LIMIT_WINDOW", "0s")])).unwrap_err();
    assert_eq!(e.variable, "RATE_LIMIT_WINDOW");
}

#[test]
fn forwarding_needs_a_secret_and_a_real_url() {
    let e =
        Settings::load(&production(&[("FORWARD_URL", "https://example.test/hook")])).unwrap_err();
    assert_eq!(e.variable, "WEBHOOK_SECRET");
    let e = Settings::load(&production(&[
        ("FORWARD_URL", "ftp://x"),
        ("WEBHOOK_SECRET", "s"),
    ]))
    .unwrap_err();
    assert_eq!(e.variable, "FORWARD_URL");
}

fn dotenv(text: &str) -> Result<Vars, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, text).unwrap();
    dotenv_vars(dotenvy::from_path_iter(&path))
}

#[test]
fn a_dotenv_file_is_read() {
    let vars = dotenv("# settings\nPORT=4000\nexport TIKTOK_APP_KEY=\"key\"\n").unwrap();
    assert_eq!(vars.get("PORT").map(String::as_str), Some("4000"));
    assert_eq!(vars.get("TIKTOK_APP_KEY").map(String::as_str), Some("key"));
}

#[test]
fn no_dotenv_file_is_no_variables() {
    let dir = tempfile::tempdir().unwrap();
    let vars = dotenv_vars(dotenvy::from_path_iter(dir.path().join(".env"))).unwrap();
    assert!(vars.is_empty());
}

/// A broken line stops start-up, and the error repeats nothing of the file:
/// not a value, nor a bare secret on a line of its own.
#[test]
fn a_broken_dotenv_line_is_an_error_that_repeats_nothing_of_the_file() {
    for text in [
        "PORT=4000\nTIKTOK_APP_SECRET=\"s3cret_value\nAPI_TOKENS=x\n",
        "PORT=4000\ns3cret_value\n",
        "API_TOKENS=s3cret_value= other\n",
    ] {
        let e = dotenv(text).unwrap_err().to_string();
        assert!(e.starts_with(".env: a line cannot be parsed"), "{e}");
        assert!(!e.contains("s3cret"), "a secret leaked: {e}");
    }
}
