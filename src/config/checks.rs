//! Checks that look at the settings as a whole: the strict ones of
//! production, and those that hold everywhere. A refusal is one line naming
//! the variable; a doubtful but workable value becomes a warning instead.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::{error, AppEnv, ConfigError, DatabaseUrl, Settings};

/// Shortest API token accepted in production (the contract's number).
const MIN_TOKEN_LEN: usize = 16;
/// Fewest distinct characters of a token: `aaaaaaaaaaaaaaaa` or
/// `1111111111111111` is long enough but guessable.
const MIN_TOKEN_VARIETY: usize = 6;
/// Folders whose contents live in memory: a database there is gone at the
/// next restart, with every stored event.
const MEMORY_FOLDERS: &[&str] = &["/dev/shm", "/run"];
/// Folders that the system may empty at boot or after some days.
const TEMPORARY_FOLDERS: &[&str] = &["/tmp", "/var/tmp"];

pub(super) fn run(mut settings: Settings) -> Result<Settings, ConfigError> {
    everywhere(&settings)?;
    if settings.env == AppEnv::Production {
        credentials(&settings)?;
        forwarding(&settings)?;
        settings.warnings = database(&settings)?;
        if settings.legacy_signature_headers {
            settings.warnings.push(
                "LEGACY_SIGNATURE_HEADERS: the older header scheme is accepted; \
                 turn it off once no relay uses it"
                    .into(),
            );
        }
    }
    Ok(settings)
}

fn everywhere(settings: &Settings) -> Result<(), ConfigError> {
    if settings.rate_limit_max == 0 {
        return Err(error("RATE_LIMIT_MAX", "must be at least 1"));
    }
    if settings.rate_limit_window.is_zero() {
        return Err(error("RATE_LIMIT_WINDOW", "must be longer than 0s"));
    }
    if settings.request_timeout.is_zero() {
        return Err(error("REQUEST_TIMEOUT", "must be longer than 0s"));
    }
    // Otherwise a slow store would surface as 408 from the request deadline
    // instead of the 503 that tells TikTok to retry.
    if settings.intake_timeout >= settings.request_timeout {
        return Err(error(
            "INTAKE_TIMEOUT",
            "must be shorter than REQUEST_TIMEOUT",
        ));
    }
    Ok(())
}

fn credentials(settings: &Settings) -> Result<(), ConfigError> {
    if settings.app_key.is_empty() {
        return Err(error("TIKTOK_APP_KEY", "must be set in production"));
    }
    let secret = settings.app_secret.expose_secret();
    if secret.is_empty() {
        return Err(error("TIKTOK_APP_SECRET", "must be set in production"));
    }
    let tokens = &settings.api_tokens;
    if tokens.is_empty() {
        return Err(error(
            "API_TOKENS",
            "at least one token must be set in production",
        ));
    }
    for token in tokens.iter().map(ExposeSecret::expose_secret) {
        if token.chars().count() < MIN_TOKEN_LEN {
            return Err(error(
                "API_TOKENS",
                format!("every token must be at least {MIN_TOKEN_LEN} characters in production"),
            ));
        }
        if variety(token) < MIN_TOKEN_VARIETY {
            return Err(error(
                "API_TOKENS",
                "a token repeats too few characters to be secret; generate one, e.g. `openssl rand -hex 32`",
            ));
        }
        let previous = settings.app_secret_previous.as_ref();
        if token == secret || previous.is_some_and(|p| p.expose_secret() == token) {
            return Err(error(
                "API_TOKENS",
                "a token must not be the TikTok app secret: the API and the signature need separate keys",
            ));
        }
    }
    Ok(())
}

/// Forwarded events are signed with our own secret, so it is judged.
fn forwarding(settings: &Settings) -> Result<(), ConfigError> {
    if settings.forward_url.is_none() {
        return Ok(());
    }
    let secret = settings
        .webhook_secret
        .as_ref()
        .map(SecretString::expose_secret);
    match secret {
        None => Err(error(
            "WEBHOOK_SECRET",
            "must be set in production when FORWARD_URL is set",
        )),
        Some(s) if s.chars().count() < MIN_TOKEN_LEN || variety(s) < MIN_TOKEN_VARIETY => {
            Err(error(
                "WEBHOOK_SECRET",
                "must be at least 16 varied characters in production",
            ))
        }
        Some(_) => Ok(()),
    }
}

/// An SQLite file in memory is refused (unless explicitly allowed); one in a
/// temporary folder is a warning only, because the shared case runner keeps
/// its production-mode databases under `/tmp`.
fn database(settings: &Settings) -> Result<Vec<String>, ConfigError> {
    let DatabaseUrl::Sqlite(path) = &settings.database else {
        return Ok(Vec::new());
    };
    let path = absolute(path);
    if under(&path, MEMORY_FOLDERS) && !settings.allow_ephemeral_database {
        return Err(error(
            "DATABASE_URL",
            format!(
                "{} is in memory and lost at restart; use persistent storage \
                 (or set ALLOW_EPHEMERAL_DATABASE=true for a throw-away instance)",
                path.display()
            ),
        ));
    }
    if under(&path, TEMPORARY_FOLDERS) {
        return Ok(vec![format!(
            "DATABASE_URL: {} is in a temporary folder that the system may empty; \
             keep production data on persistent storage",
            path.display()
        )]);
    }
    Ok(Vec::new())
}

/// `FRONTEND_URL` must be exactly an origin: the browser compares it byte for
/// byte with its `Origin` header, so a path or a trailing slash never matches.
pub(super) fn origin(value: &str) -> Result<String, ConfigError> {
    let refuse = |why: &str| error("FRONTEND_URL", format!("`{value}` {why}"));
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| refuse("must start with https:// or http:// (one origin, no wildcard)"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ', '@']) {
        return Err(refuse(
            "must be an origin such as https://shop.example.com, without path or wildcard",
        ));
    }
    Ok(value.to_ascii_lowercase())
}

fn variety(text: &str) -> usize {
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    chars.len()
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn under(path: &Path, folders: &[&str]) -> bool {
    folders.iter().any(|folder| path.starts_with(folder))
}
