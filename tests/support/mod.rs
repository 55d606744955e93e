//! Test helpers: an application on a random port over a fresh database
//! (SQLite or PostgreSQL), a client that signs like TikTok, and fixture
//! loading.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod cluster;
pub mod postgres;
pub mod process;
pub mod receiver;

use std::{collections::HashMap, path::PathBuf, time::Duration};

use serde_json::Value;
use tiktok_webhook::{app::Application, clock::Clock, config::Settings, tiktok::signature::sign};

pub const APP_KEY: &str = "testkey42";
pub const APP_SECRET: &str = "test-secret-0123456789abcdef";
pub const API_TOKEN: &str = "test-api-token-0123456789";

/// Which database a test stores into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Declares each listed `async fn name(db: Db)` as two tests, `sqlite::name`
/// and `postgres::name`. Without a PostgreSQL server the second one says on
/// stderr that it did not run (see `postgres::available`).
macro_rules! on_both_databases {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::Db::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if $crate::support::postgres::available(stringify!($test)) {
                        super::$test($crate::support::Db::Postgres).await;
                    }
                }
            )+
        }
    };
}
pub(crate) use on_both_databases;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Dropped after the app: the PostgreSQL database goes with it.
    database: Option<postgres::TestDatabase>,
}

/// A fresh database for `db`: a file in `dir`, or a new PostgreSQL database
/// that is dropped with the returned value.
pub async fn fresh_database(
    db: Db,
    dir: &std::path::Path,
) -> (String, Option<postgres::TestDatabase>) {
    match db {
        Db::Sqlite => (format!("sqlite://{}/db.sqlite", dir.display()), None),
        Db::Postgres => {
            let database = postgres::TestDatabase::create().await;
            (database.url.clone(), Some(database))
        }
    }
}

/// The settings of a test app; `extra` overrides any variable.
pub fn settings(database_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = [
        ("APP_ENV", "production"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("TIKTOK_APP_KEY", APP_KEY),
        ("TIKTOK_APP_SECRET", APP_SECRET),
        ("API_TOKENS", API_TOKEN),
        ("RATE_LIMIT_MAX", "1000000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.insert("DATABASE_URL".into(), database_url.into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Settings::load(&vars).expect("test settings are valid")
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, &[]).await
}

pub async fn spawn_app_with(db: Db, extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (url, database) = fresh_database(db, dir.path()).await;
    let mut app = spawn_app_at(&url, extra, dir).await;
    app.database = database;
    app
}

/// An app on the database at `database_url`, which the caller owns.
pub async fn spawn_app_at(
    database_url: &str,
    extra: &[(&str, &str)],
    dir: tempfile::TempDir,
) -> TestApp {
    let clock = Clock::system();
    let app = Application::build_with_clock(settings(database_url, extra), clock.clone())
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = signal.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        address,
        client: reqwest::Client::new(),
        clock,
        dir,
        shutdown: Some(shutdown),
        task: Some(task),
        database: None,
    }
}

impl TestApp {
    /// POSTs `body` signed with the test app's key and secret.
    pub async fn send(&self, body: &str) -> reqwest::Response {
        self.send_bytes(body.as_bytes()).await
    }

    pub async fn send_bytes(&self, body: &[u8]) -> reqwest::Response {
        self.client
            .post(format!("{}/webhook/tiktok", self.address))
            .header("content-type", "application/json")
            .header("authorization", sign(APP_KEY, APP_SECRET, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// GET with the API token; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("stops within 30 s")
                .unwrap();
        }
        drop(self.database.take());
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A type 1 body for `order_id` with `status` at `update_time`.
pub fn status_event(event_id: &str, order_id: &str, status: &str, update_time: i64) -> String {
    format!(
        r#"{{"type":1,"tts_notification_id":"{event_id}","shop_id":"7495000000000000001","timestamp":{ts},"data":{{"is_on_hold_order":false,"order_id":"{order_id}","order_status":"{status}","update_time":{update_time}}}}}"#,
        ts = now() - 5,
    )
}

pub fn data_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// A fixture body with its envelope `timestamp` set to now (the samples are
/// older than WEBHOOK_MAX_AGE).
pub fn fresh_fixture(name: &str) -> Vec<u8> {
    let body = std::fs::read(data_path(&format!("events/{name}"))).unwrap();
    tiktok_webhook::cli::with_timestamp(&body, now())
}
