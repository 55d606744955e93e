//! Typed settings, built once at start from the environment (and `.env`).
//!
//! Nothing else in the crate reads the environment: [`Settings::load`] takes a
//! map of variables so that tests can build settings without touching the
//! process environment.

mod checks;
mod dev_credentials;

use std::{collections::HashMap, net::IpAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::queue::{QueueSettings, RetryPolicy};

pub use dev_credentials::Generated;

/// The one error type of configuration: a line naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

pub(crate) fn error(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where events are kept.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// Holds the password, so it is a secret.
    Postgres(SecretString),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl DatabaseUrl {
    /// The URL with any password replaced, for logs and `check-config`.
    pub fn masked(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => mask_password(url.expose_secret()),
        }
    }
}

fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres://***".into();
    };
    match rest.split_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://{auth}@{host}"),
        },
        None => format!("{scheme}://{rest}"),
    }
}

/// How many connections the store may hold, and how long a caller waits for
/// one; see `db_pool_size` and `db_acquire_timeout` in [`Settings`].
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub size: u32,
    pub acquire_timeout: Duration,
}

/// Every setting of the service. Each field is documented once, here.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST`: listening address.
    pub host: IpAddr,
    /// `PORT`: listening port; 0 picks a free one.
    pub port: u16,
    /// `APP_ENV` (fallback `NODE_ENV`): `production` turns on strict checks.
    pub env: AppEnv,
    /// `DATABASE_URL`, or a PostgreSQL URL built from `DB_*`.
    pub database: DatabaseUrl,
    /// Folder for the SQLite file and generated development credentials.
    pub data_dir: PathBuf,
    /// `TIKTOK_APP_KEY`: part of the signed message.
    pub app_key: String,
    /// `TIKTOK_APP_SECRET`: the signing key.
    pub app_secret: SecretString,
    /// `TIKTOK_APP_SECRET_PREVIOUS`: accepted too, during a rotation.
    pub app_secret_previous: Option<SecretString>,
    /// `API_TOKENS` (comma-separated) and `API_TOKEN`: bearer tokens for `/api`.
    pub api_tokens: Vec<SecretString>,
    /// `FRONTEND_URL`: the one origin CORS allows (`scheme://host[:port]`).
    pub frontend_url: Option<String>,
    /// `TRUST_PROXY`: how many proxies in front append to `X-Forwarded-For`;
    /// 0 (the default, `false`) uses the socket peer as the client address.
    pub trust_proxy: usize,
    /// `WEBHOOK_MAX_AGE`: older body timestamps are refused.
    pub webhook_max_age: Duration,
    /// `LEGACY_SIGNATURE_HEADERS`: also accept the x-tiktok-shop-* scheme.
    pub legacy_signature_headers: bool,
    /// `LEGACY_SIGNATURE_TOLERANCE`: freshness window of that scheme.
    pub legacy_signature_tolerance: Duration,
    /// `LOG_FORMAT`: `pretty` or `json`.
    pub log_format: LogFormat,
    /// `RATE_LIMIT_MAX` per `RATE_LIMIT_WINDOW` and client address.
    pub rate_limit_max: u32,
    pub rate_limit_window: Duration,
    /// `FORWARD_URL`: where processed events go onward.
    pub forward_url: Option<String>,
    /// `WEBHOOK_SECRET`: signs forwarded events.
    pub webhook_secret: Option<SecretString>,
    /// `WEBHOOK_BODY_LIMIT`: largest accepted body in bytes, after gzip.
    pub body_limit: usize,
    /// `INTAKE_TIMEOUT`: how long intake waits for the store before a 503.
    pub intake_timeout: Duration,
    /// `REQUEST_TIMEOUT`: the longest any request may take, body upload
    /// included (408 after); also the limit for reading request headers and
    /// for an idle keep-alive connection.
    pub request_timeout: Duration,
    /// `ALLOW_EPHEMERAL_DATABASE`: in production, accept an SQLite file in
    /// memory-backed folders (`/dev/shm`, `/run`), for throw-away instances.
    pub allow_ephemeral_database: bool,
    /// `DB_POOL_SIZE`: reader connections (SQLite) or pool size for reads
    /// (PostgreSQL, whose writer keeps two more connections of its own).
    pub db_pool_size: u32,
    /// `DB_ACQUIRE_TIMEOUT` (PostgreSQL): how long a request waits for a
    /// connection, opening one included, before it is answered 503. While
    /// the database is down every write waits this long, so it bounds how
    /// fast TikTok hears 503; keep it well under `INTAKE_TIMEOUT`.
    pub db_acquire_timeout: Duration,
    /// `FORWARD_TIMEOUT`: how long one forward may take.
    pub forward_timeout: Duration,
    /// The processing queue: `QUEUE_WORKERS`, `QUEUE_BATCH`, `JOB_LEASE`,
    /// `QUEUE_POLL_INTERVAL`, `RETRY_MAX_ATTEMPTS`, `RETRY_MAX_AGE`,
    /// `RETRY_BASE_DELAY`, `RETRY_MAX_DELAY`, `SHUTDOWN_TIMEOUT`.
    pub queue: QueueSettings,
    /// Which credentials were generated for development (printed at start).
    pub generated: Generated,
    /// Doubtful but allowed settings, one line each; `serve` logs them once
    /// logging is up, `check-config` prints them.
    pub warnings: Vec<String>,
}

type Vars = HashMap<String, String>;

/// The variables of a `.env` file; none when there is no file. A line that
/// cannot be read stops start-up: skipping it would run the service without
/// a setting its operator wrote down. The error repeats nothing of the
/// file, which holds secrets.
fn dotenv_vars<R: std::io::Read>(
    file: Result<dotenvy::Iter<R>, dotenvy::Error>,
) -> Result<Vars, ConfigError> {
    let iter = match file {
        Ok(iter) => iter,
        Err(e) if e.not_found() => return Ok(Vars::new()),
        Err(e) => return Err(error(".env", format!("cannot be read: {}", io_reason(&e)))),
    };
    let mut vars = Vars::new();
    for item in iter {
        match item {
            Ok((key, value)) => {
                vars.insert(key, value);
            }
            // The text dotenvy quotes may be a value, or a whole line
            // without `=`: none of it is repeated.
            Err(dotenvy::Error::LineParse(..)) => {
                return Err(error(
                    ".env",
                    "a line cannot be parsed (an unclosed quote, or a line that is not \
                     `NAME=value`); fix or remove it",
                ));
            }
            Err(e) => return Err(error(".env", format!("cannot be read: {}", io_reason(&e)))),
        }
    }
    Ok(vars)
}

/// An I/O error's reason, without any file content.
fn io_reason(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => io.kind().to_string(),
        dotenvy::Error::EnvVar(_) => "a variable is not valid Unicode".to_owned(),
        _ => "it is not a valid .env file".to_owned(),
    }
}

impl Settings {
    /// Reads `.env` (real variables win) and the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = dotenv_vars(dotenvy::dotenv_iter())?;
        vars.extend(std::env::vars());
        Self::load(&vars)
    }

    /// Builds settings from a map of variables; may write generated
    /// development credentials into the data folder.
    pub fn load(vars: &Vars) -> Result<Self, ConfigError> {
        let env_vars = EnvVars(vars);
        let get = |name: &str| env_vars.get(name);
        let env = match get("APP_ENV").or_else(|| get("NODE_ENV")) {
            None => AppEnv::Development,
            Some(v) if v.eq_ignore_ascii_case("production") => AppEnv::Production,
            Some(v)
                if ["development", "dev", "test"].contains(&v.to_ascii_lowercase().as_str()) =>
            {
                AppEnv::Development
            }
            Some(v) => {
                // Name the variable the value came from.
                let variable = if get("APP_ENV").is_some() {
                    "APP_ENV"
                } else {
                    "NODE_ENV"
                };
                return Err(error(
                    variable,
                    format!("`{v}` is not `development` or `production`"),
                ));
            }
        };
        let database = database_url(&env_vars)?;
        let data_dir = match &database {
            DatabaseUrl::Sqlite(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
            DatabaseUrl::Postgres(_) => PathBuf::from("data"),
        };
        let data_dir = get("DATA_DIR").map(PathBuf::from).unwrap_or(data_dir);

        let mut tokens: Vec<SecretString> = get("API_TOKENS")
            .into_iter()
            .flat_map(|v| v.split(','))
            .chain(get("API_TOKEN"))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned()))
            .collect();
        let mut app_key = get("TIKTOK_APP_KEY").map(str::to_owned);
        let mut app_secret = get("TIKTOK_APP_SECRET").map(|s| SecretString::from(s.to_owned()));

        let mut generated = Generated::default();
        if env == AppEnv::Development
            && (app_key.is_none() || app_secret.is_none() || tokens.is_empty())
        {
            let creds = dev_credentials::load_or_create(&data_dir)?;
            generated = creds.fill(&mut app_key, &mut app_secret, &mut tokens);
        }

        let settings = Settings {
            host: match get("HOST") {
                Some("localhost") => IpAddr::from([127, 0, 0, 1]),
                other => parse_or("HOST", other, IpAddr::from([127, 0, 0, 1]))?,
            },
            port: parse_or("PORT", get("PORT"), 3001)?,
            env,
            database,
            data_dir,
            app_key: app_key.unwrap_or_default(),
            app_secret: app_secret.unwrap_or_else(|| SecretString::from(String::new())),
            app_secret_previous: get("TIKTOK_APP_SECRET_PREVIOUS")
                .map(|s| SecretString::from(s.to_owned())),
            api_tokens: tokens,
            frontend_url: get("FRONTEND_URL").map(checks::origin).transpose()?,
            trust_proxy: trust_proxy(get("TRUST_PROXY"))?,
            webhook_max_age: duration("WEBHOOK_MAX_AGE", get("WEBHOOK_MAX_AGE"), "24h")?,
            legacy_signature_headers: boolean(
                "LEGACY_SIGNATURE_HEADERS",
                get("LEGACY_SIGNATURE_HEADERS"),
            )?,
            legacy_signature_tolerance: duration(
                "LEGACY_SIGNATURE_TOLERANCE",
                get("LEGACY_SIGNATURE_TOLERANCE"),
                "5m",
            )?,
            log_format: match get("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
                None | Some("pretty") | Some("text") => LogFormat::Pretty,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(error(
                        "LOG_FORMAT",
                        format!("`{other}` is not `pretty` or `json`"),
                    ))
                }
            },
            rate_limit_max: parse_or("RATE_LIMIT_MAX", get("RATE_LIMIT_MAX"), 100)?,
            rate_limit_window: duration("RATE_LIMIT_WINDOW", get("RATE_LIMIT_WINDOW"), "15m")?,
            forward_url: forward_url(&env_vars)?,
            webhook_secret: get("WEBHOOK_SECRET").map(|s| SecretString::from(s.to_owned())),
            body_limit: parse_or("WEBHOOK_BODY_LIMIT", get("WEBHOOK_BODY_LIMIT"), 4 << 20)?,
            intake_timeout: duration("INTAKE_TIMEOUT", get("INTAKE_TIMEOUT"), "2s")?,
            request_timeout: duration("REQUEST_TIMEOUT", get("REQUEST_TIMEOUT"), "10s")?,
            allow_ephemeral_database: boolean(
                "ALLOW_EPHEMERAL_DATABASE",
                get("ALLOW_EPHEMERAL_DATABASE"),
            )?,
            db_pool_size: parse_or("DB_POOL_SIZE", get("DB_POOL_SIZE"), 8)?,
            db_acquire_timeout: duration("DB_ACQUIRE_TIMEOUT", get("DB_ACQUIRE_TIMEOUT"), "500ms")?,
            forward_timeout: duration("FORWARD_TIMEOUT", get("FORWARD_TIMEOUT"), "10s")?,
            queue: queue_settings(&env_vars)?,
            generated,
            warnings: Vec::new(),
        };
        checks::run(settings)
    }

    /// The connection pool settings the store is opened with.
    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            size: self.db_pool_size,
            acquire_timeout: self.db_acquire_timeout,
        }
    }

    pub fn is_production(&self) -> bool {
        self.env == AppEnv::Production
    }

    /// The settings as `check-config` prints them: secrets masked.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let secret = |s: &SecretString| mask(s.expose_secret());
        vec![
            ("APP_ENV", format!("{:?}", self.env).to_lowercase()),
            ("HOST", self.host.to_string()),
            ("PORT", self.port.to_string()),
            ("DATABASE_URL", self.database.masked()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            ("TIKTOK_APP_KEY", self.app_key.clone()),
            ("TIKTOK_APP_SECRET", secret(&self.app_secret)),
            (
                "TIKTOK_APP_SECRET_PREVIOUS",
                self.app_secret_previous
                    .as_ref()
                    .map_or("(unset)".into(), secret),
            ),
            (
                "API_TOKENS",
                format!("{} token(s), masked", self.api_tokens.len()),
            ),
            (
                "FRONTEND_URL",
                self.frontend_url.clone().unwrap_or("(unset)".into()),
            ),
            ("WEBHOOK_MAX_AGE", humanize(self.webhook_max_age)),
            (
                "LEGACY_SIGNATURE_HEADERS",
                self.legacy_signature_headers.to_string(),
            ),
            (
                "LEGACY_SIGNATURE_TOLERANCE",
                humanize(self.legacy_signature_tolerance),
            ),
            (
                "LOG_FORMAT",
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            ("RATE_LIMIT_MAX", self.rate_limit_max.to_string()),
            ("RATE_LIMIT_WINDOW", humanize(self.rate_limit_window)),
            ("TRUST_PROXY", self.trust_proxy.to_string()),
            (
                "FORWARD_URL",
                self.forward_url
                    .as_deref()
                    .map_or("(unset)".into(), mask_url),
            ),
            (
                "WEBHOOK_SECRET",
                self.webhook_secret
                    .as_ref()
                    .map_or("(unset)".into(), secret),
            ),
            ("WEBHOOK_BODY_LIMIT", self.body_limit.to_string()),
            ("INTAKE_TIMEOUT", humanize(self.intake_timeout)),
            ("REQUEST_TIMEOUT", humanize(self.request_timeout)),
            (
                "ALLOW_EPHEMERAL_DATABASE",
                self.allow_ephemeral_database.to_string(),
            ),
            ("DB_POOL_SIZE", self.db_pool_size.to_string()),
            ("DB_ACQUIRE_TIMEOUT", humanize(self.db_acquire_timeout)),
            ("FORWARD_TIMEOUT", humanize(self.forward_timeout)),
            ("QUEUE_WORKERS", self.queue.workers.to_string()),
            ("QUEUE_BATCH", self.queue.batch.to_string()),
            ("JOB_LEASE", humanize(self.queue.lease)),
            ("QUEUE_POLL_INTERVAL", humanize(self.queue.poll)),
            (
                "RETRY_MAX_ATTEMPTS",
                self.queue.retry.max_attempts.to_string(),
            ),
            ("RETRY_MAX_AGE", humanize(self.queue.retry.max_age)),
            ("RETRY_BASE_DELAY", humanize(self.queue.retry.base_delay)),
            ("RETRY_MAX_DELAY", humanize(self.queue.retry.max_delay)),
            ("SHUTDOWN_TIMEOUT", humanize(self.queue.shutdown)),
        ]
    }
}

fn queue_settings(vars: &EnvVars<'_>) -> Result<QueueSettings, ConfigError> {
    let get = |name: &str| vars.get(name);
    let settings = QueueSettings {
        workers: parse_or("QUEUE_WORKERS", get("QUEUE_WORKERS"), 4)?,
        batch: parse_or("QUEUE_BATCH", get("QUEUE_BATCH"), 16)?,
        lease: duration("JOB_LEASE", get("JOB_LEASE"), "60s")?,
        poll: duration("QUEUE_POLL_INTERVAL", get("QUEUE_POLL_INTERVAL"), "1s")?,
        retry: RetryPolicy {
            max_attempts: parse_or("RETRY_MAX_ATTEMPTS", get("RETRY_MAX_ATTEMPTS"), 12)?,
            max_age: duration("RETRY_MAX_AGE", get("RETRY_MAX_AGE"), "24h")?,
            base_delay: duration("RETRY_BASE_DELAY", get("RETRY_BASE_DELAY"), "10s")?,
            max_delay: duration("RETRY_MAX_DELAY", get("RETRY_MAX_DELAY"), "1h")?,
        },
        shutdown: duration("SHUTDOWN_TIMEOUT", get("SHUTDOWN_TIMEOUT"), "30s")?,
    };
    if settings.workers == 0 {
        return Err(error("QUEUE_WORKERS", "must be at least 1"));
    }
    if settings.batch < 1 {
        return Err(error("QUEUE_BATCH", "must be at least 1"));
    }
    if settings.retry.max_attempts < 1 {
        return Err(error("RETRY_MAX_ATTEMPTS", "must be at least 1"));
    }
    if settings.retry.max_delay < settings.retry.base_delay {
        return Err(error(
            "RETRY_MAX_DELAY",
            "must not be shorter than RETRY_BASE_DELAY",
        ));
    }
    Ok(settings)
}

/// `FORWARD_URL` must be an http(s) URL, and forwarding needs
/// `WEBHOOK_SECRET` to sign with.
fn forward_url(vars: &EnvVars<'_>) -> Result<Option<String>, ConfigError> {
    let Some(url) = vars.get("FORWARD_URL") else {
        return Ok(None);
    };
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
        _ => return Err(error("FORWARD_URL", "must be an http:// or https:// URL")),
    }
    if vars.get("WEBHOOK_SECRET").is_none() {
        return Err(error(
            "WEBHOOK_SECRET",
            "must be set when FORWARD_URL is: forwarded events are signed with it",
        ));
    }
    Ok(Some(url.to_owned()))
}

/// Set, non-blank variables, trimmed.
struct EnvVars<'a>(&'a Vars);

impl<'a> EnvVars<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

fn database_url(vars: &EnvVars<'_>) -> Result<DatabaseUrl, ConfigError> {
    let get = |name: &str| vars.get(name);
    if let Some(url) = get("DATABASE_URL") {
        return parse_database_url(url);
    }
    if let Some(host) = get("DB_HOST") {
        let user = get("DB_USER").unwrap_or("postgres");
        let auth = match get("DB_PASSWORD") {
            Some(password) => format!("{user}:{password}"),
            None => user.to_owned(),
        };
        let port = get("DB_PORT").unwrap_or("5432");
        let name = get("DB_NAME").unwrap_or("tiktok_orders");
        let url = format!("postgres://{auth}@{host}:{port}/{name}");
        return Ok(DatabaseUrl::Postgres(SecretString::from(url)));
    }
    parse_database_url("sqlite://data/tiktok-webhook.db")
}

fn parse_database_url(url: &str) -> Result<DatabaseUrl, ConfigError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err(error(
                "DATABASE_URL",
                "give SQLite a file path, e.g. sqlite://data/tiktok-webhook.db (in-memory would lose events)",
            ));
        }
        return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseUrl::Postgres(SecretString::from(url.to_owned())));
    }
    Err(error(
        "DATABASE_URL",
        "must start with sqlite:// or postgres://",
    ))
}

fn parse_or<T: std::str::FromStr>(
    name: &'static str,
    value: Option<&str>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| error(name, format!("`{v}` is not a valid value"))),
    }
}

/// `TRUST_PROXY`: `false`/`true` (no proxy / one proxy) or a number of hops.
fn trust_proxy(value: Option<&str>) -> Result<usize, ConfigError> {
    match value.map(|v| v.parse::<usize>()) {
        Some(Ok(hops)) if hops <= 10 => Ok(hops),
        Some(Ok(_)) => Err(error(
            "TRUST_PROXY",
            "more than 10 proxies is not plausible",
        )),
        _ => boolean("TRUST_PROXY", value).map(usize::from),
    }
}

fn boolean(name: &'static str, value: Option<&str>) -> Result<bool, ConfigError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") | Some("no") | Some("off") => Ok(false),
        Some("true") | Some("1") | Some("yes") | Some("on") => Ok(true),
        Some(other) => Err(error(name, format!("`{other}` is not true or false"))),
    }
}

/// Accepts `90s`, `5m`, `24h` (and combinations like `1h30m`), or bare seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).ok()
}

fn duration(
    name: &'static str,
    value: Option<&str>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = value.unwrap_or(default);
    parse_duration(text).ok_or_else(|| {
        error(
            name,
            format!("`{text}` is not a duration like 90s, 5m or 24h"),
        )
    })
}

fn humanize(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A URL without what may hold a credential: user info and query.
fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some();
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            format!("{parsed}{}", if had_query { "?***" } else { "" })
        }
        Err(_) => "***".into(),
    }
}

fn mask(secret: &str) -> String {
    if secret.is_empty() {
        "(unset)".into()
    } else {
        format!("*** ({} characters)", secret.chars().count())
    }
}

#[cfg(test)]
mod tests;
