//! PostgreSQL for the tests: a fresh database per test on the server named
//! by `TEST_POSTGRES_URL`, dropped afterwards.
//!
//! Without that variable the PostgreSQL half of the suite cannot run. Each
//! affected test then says so on stderr (written past the test harness's
//! capture, so that a green run cannot hide it), and fails instead when
//! `REQUIRE_POSTGRES=1`, as in CI.

use std::io::Write as _;

use sqlx::{Connection, PgConnection};

/// The admin URL: a user who may create databases, on the `postgres` database.
pub fn admin_url() -> Option<String> {
    std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

pub fn required() -> bool {
    std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Whether `test` can run on PostgreSQL; says loudly why not when it cannot.
pub fn available(test: &str) -> bool {
    if admin_url().is_some() {
        return true;
    }
    assert!(
        !required(),
        "REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set: {test} cannot run on PostgreSQL"
    );
    not_run(
        test,
        "TEST_POSTGRES_URL is not set. Start a throwaway server with \
         `bash .ci/postgres.sh start` and export the URL it prints",
    );
    false
}

/// Tells, past the harness's output capture, that a test did not run.
pub fn not_run(test: &str, why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! NOT RUN on PostgreSQL: {test}\n!!! {why}\n"
    );
}

/// A database of its own for one test; dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let admin = admin_url().expect("TEST_POSTGRES_URL is set");
        Self::create_on(&admin).await
    }

    /// A new database on the server that `admin` reaches.
    pub async fn create_on(admin: &str) -> TestDatabase {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL of TEST_POSTGRES_URL: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .expect("CREATE DATABASE works for the TEST_POSTGRES_URL user");
        let _ = connection.close().await;
        TestDatabase {
            url: with_database(admin, &name),
            admin: admin.to_owned(),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run on the test's runtime, which cannot wait for a future
        // inside a synchronous call: a thread with its own runtime does it.
        // FORCE ends connections that a failed test left open.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut connection)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop test database {}",
                self.name
            );
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
