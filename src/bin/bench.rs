//! Intake benchmark: starts the built server on a fresh database, sends N
//! unique signed events at concurrency C, checks that every event answered
//! 200 is stored, and prints events/s, latency percentiles and peak RSS,
//! next to two ceilings measured in the same run: a trivial axum endpoint,
//! and the database's one-row-per-commit insert rate.
//!
//!     cargo build --release
//!     target/release/bench                       # SQLite
//!     target/release/bench --database postgres://postgres@127.0.0.1:5432/postgres
//!     target/release/bench --smoke               # seconds, for CI

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use sqlx::{Connection, Executor};
use tiktok_webhook::tiktok::signature::sign;

const KEY: &str = "benchkey";
const SECRET: &str = "bench-secret-0123456789";
const TOKEN: &str = "bench-token-0123456789";

#[derive(Parser, Clone)]
struct Args {
    /// Events to send in the full-load run.
    #[arg(long, default_value_t = 30_000)]
    events: usize,
    /// Connections sending at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Rate of the steady run, events/s.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Length of the steady run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    steady: Duration,
    /// An admin PostgreSQL URL (a fresh database is made and dropped);
    /// SQLite in a temporary folder when absent.
    #[arg(long)]
    database: Option<String>,
    /// A few seconds' run that checks the machinery, not the speed.
    #[arg(long)]
    smoke: bool,
    /// Extra server settings, NAME=VALUE (repeatable), e.g. QUEUE_WORKERS=1.
    #[arg(long = "server-env", value_parser = parse_pair)]
    server_env: Vec<(String, String)>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| "expected NAME=VALUE".to_owned())
}

struct Run {
    sent: usize,
    ok: Vec<String>,
    failed: usize,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ok.len() as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

// One thread: the load generator takes at most one core from the server.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.events = 500;
        args.rate = 200;
        args.steady = Duration::from_secs(1);
    }
    let binary = server_binary()?;
    let dir = tempfile::tempdir()?;
    let (database_url, backend) = fresh_database(&args, dir.path()).await?;

    let cores = std::thread::available_parallelism()?.get();
    println!("machine: {cores} cores, {}", cpu_model());
    if args.database.is_some() {
        println!("PostgreSQL: {}", pg_durability(&database_url).await?);
    }
    let axum_ceiling = trivial_axum_ceiling(&args).await?;
    let db_ceiling = one_row_per_commit(&database_url, dir.path()).await?;

    let port = free_port()?;
    let mut server = start_server(&binary, &database_url, port, dir.path(), &args.server_env)?;
    wait_healthy(port).await?;
    let url = format!("http://127.0.0.1:{port}/webhook/tiktok");

    let full_bodies = bodies(0, args.events);
    let (server_cpu, own_cpu) = (cpu_seconds(server.id()), cpu_seconds(std::process::id()));
    let machine_cpu = machine_cpu_seconds();
    let full = load(&url, &full_bodies, args.concurrency, None).await;
    let server_cpu = cpu_seconds(server.id()) - server_cpu;
    let own_cpu = cpu_seconds(std::process::id()) - own_cpu;
    let machine_cpu = machine_cpu_seconds() - machine_cpu;
    let full_caught_up = caught_up(port, &full).await;
    let steady_count = (args.rate as f64 * args.steady.as_secs_f64()) as usize;
    let steady = load(
        &url,
        &bodies(args.events, steady_count),
        args.concurrency,
        Some(args.rate),
    )
    .await;
    let steady_caught_up = caught_up(port, &steady).await;
    let peak_rss_kb = peak_rss_kb(server.id());
    let missing = missing_events(port, &full.ok, &steady.ok).await?;
    stop(&mut server);
    drop_database(&args, &database_url).await;

    println!("\nbackend: {backend}");
    println!("| run | events | answered 200 | failed | events/s | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, run) in [
        (
            format!("full load, {} connections", args.concurrency),
            &full,
        ),
        (format!("steady {} events/s", args.rate), &steady),
    ] {
        println!(
            "| {name} | {} | {} | {} | {:.0} | {:.1} | {:.1} |",
            run.sent,
            run.ok.len(),
            run.failed,
            run.rate(),
            ms(run.percentile(0.50)),
            ms(run.percentile(0.99)),
        );
    }
    let per_event = |seconds: f64| seconds * 1e6 / full.sent as f64;
    println!(
        "\nCPU per event at full load: server {:.0} µs, load generator {:.0} µs, \
         everything else (the database, the kernel's disk work) {:.0} µs: {:.0} µs in all \
         (two cores have {} µs per event at 20,000 events/s)",
        per_event(server_cpu),
        per_event(own_cpu),
        per_event((machine_cpu - server_cpu - own_cpu).max(0.0)),
        per_event(machine_cpu),
        2_000_000 / 20_000,
    );
    // Busy share of every core during the full load: well under 100% means
    // the requests waited on something other than the CPU (commits, syncs,
    // hand-offs between threads), not that the machine was full.
    println!(
        "machine busy during the full load: {:.0}% of {cores} cores",
        100.0 * machine_cpu / (cores as f64 * full.seconds)
    );
    for (run, after) in [
        ("full load", full_caught_up),
        ("steady run", steady_caught_up),
    ] {
        match after {
            Some(after) => println!(
                "processing (the queue) caught up {:.2} s after the {run} ended",
                after.as_secs_f64()
            ),
            None => println!("processing (the queue) had not caught up 60 s after the {run}"),
        }
    }
    println!(
        "peak RSS of the server: {:.1} MB",
        peak_rss_kb as f64 / 1024.0
    );
    println!(
        "ceiling, trivial axum endpoint: {axum_ceiling:.0} requests/s (ours: {:.0}%)",
        100.0 * full.rate() / axum_ceiling
    );
    println!(
        "ceiling, one row per commit: {db_ceiling:.0} rows/s (ours: {:.1}x)",
        full.rate() / db_ceiling
    );
    println!("answered 200 and missing from the database: {missing}");
    if missing > 0 {
        bail!("{missing} acknowledged events are not stored");
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn server_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("tiktok-webhook");
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build --release` first",
            path.display()
        );
    }
    Ok(path)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The settings that decide whether a PostgreSQL commit is on disk: figures
/// with `fsync = off` are not comparable.
async fn pg_durability(url: &str) -> anyhow::Result<String> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut shown = Vec::new();
    for setting in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
    ] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(&mut conn)
            .await?;
        shown.push(format!("{setting}={value}"));
    }
    Ok(shown.join(", "))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn fresh_database(args: &Args, dir: &Path) -> anyhow::Result<(String, &'static str)> {
    match &args.database {
        None => Ok((
            format!("sqlite://{}/bench.db", dir.display()),
            "SQLite (WAL, synchronous=FULL)",
        )),
        Some(admin) => {
            let name = format!("bench_{}", std::process::id());
            let mut conn = sqlx::PgConnection::connect(admin).await?;
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await?;
            let (base, _) = admin
                .rsplit_once('/')
                .context("admin URL needs a /database")?;
            Ok((format!("{base}/{name}"), "PostgreSQL"))
        }
    }
}

async fn drop_database(args: &Args, url: &str) {
    if let (Some(admin), Some((_, name))) = (&args.database, url.rsplit_once('/')) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}

fn start_server(
    binary: &Path,
    database: &str,
    port: u16,
    dir: &Path,
    extra: &[(String, String)],
) -> anyhow::Result<Child> {
    Ok(Command::new(binary)
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("APP_ENV", "production")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", database)
        .env("TIKTOK_APP_KEY", KEY)
        .env("TIKTOK_APP_SECRET", SECRET)
        .env("API_TOKENS", TOKEN)
        .env("RATE_LIMIT_MAX", "100000000")
        .env("RUST_LOG", "warn")
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?)
}

fn stop(server: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

async fn wait_healthy(port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/health");
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(&url).await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become healthy")
}

/// Signed type 1 bodies with unique notification ids, made before timing.
fn bodies(first: usize, count: usize) -> Vec<(String, Bytes, String)> {
    let now = chrono::Utc::now().timestamp();
    (first..first + count)
        .map(|i| {
            let id = format!("75{:017}", i);
            let body = format!(
                r#"{{"type":1,"tts_notification_id":"{id}","shop_id":"7495000000000000777","timestamp":{now},"data":{{"is_on_hold_order":false,"order_id":"58{:016}","order_status":"AWAITING_SHIPMENT","update_time":{now}}}}}"#,
                i
            );
            let signature = sign(KEY, SECRET, body.as_bytes());
            (id, Bytes::from(body), signature)
        })
        .collect()
}

/// Sends every body over `concurrency` keep-alive connections (hyper's
/// HTTP/1 client, one request at a time on each), as fast as possible or
/// paced at `rate` per second. A lean client: its CPU comes out of the same
/// two cores the server runs on.
async fn load(
    url: &str,
    bodies: &[(String, Bytes, String)],
    concurrency: usize,
    rate: Option<u64>,
) -> Run {
    let uri: hyper::Uri = url.parse().expect("a URL");
    let address = format!(
        "{}:{}",
        uri.host().expect("a host"),
        uri.port_u16().unwrap_or(80)
    );
    let work = Arc::new(bodies.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (work, next, uri, address) = (work.clone(), next.clone(), uri.clone(), address.clone());
        tasks.spawn(async move {
            let mut results = Vec::new();
            let mut sender = None;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((id, body, signature)) = work.get(i) else {
                    break;
                };
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent = Instant::now();
                let ok = post(&mut sender, &address, &uri, body, signature)
                    .await
                    .unwrap_or(false);
                results.push((id.clone(), ok, sent.elapsed()));
            }
            results
        });
    }
    let mut run = Run {
        sent: bodies.len(),
        ok: Vec::new(),
        failed: 0,
        seconds: 0.0,
        latencies: Vec::new(),
    };
    while let Some(Ok(results)) = tasks.join_next().await {
        for (id, ok, latency) in results {
            run.latencies.push(latency);
            if ok {
                run.ok.push(id);
            } else {
                run.failed += 1;
            }
        }
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>;

/// One POST on the task's connection, opening it first if there is none
/// (or the last one failed); true for a 2xx answer.
async fn post(
    sender: &mut Option<Sender>,
    address: &str,
    uri: &hyper::Uri,
    body: &Bytes,
    signature: &str,
) -> anyhow::Result<bool> {
    use http_body_util::BodyExt;
    if !matches!(sender, Some(s) if !s.is_closed()) {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (send, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        *sender = Some(send);
    }
    let send = sender.as_mut().expect("connected above");
    let request = hyper::Request::post(uri.path())
        .header("host", address)
        .header("authorization", signature)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(body.clone()))?;
    let outcome = async {
        send.ready().await?;
        let response = send.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        anyhow::Ok(ok)
    }
    .await;
    if outcome.is_err() {
        *sender = None;
    }
    outcome
}

/// How long after a run the queue had processed every event of it: no
/// order is left unprocessed (each event is its own order). Workers give
/// way to intake during a burst and catch up afterwards; the last event
/// sent is not always the last processed (it may have gone straight to a
/// worker while older ones waited in the table).
async fn caught_up(port: u16, run: &Run) -> Option<Duration> {
    run.ok.last()?;
    let started = Instant::now();
    let client = reqwest::Client::new();
    while started.elapsed() < Duration::from_secs(60) {
        let left: Option<usize> = async {
            let page: serde_json::Value = client
                .get(format!(
                    "http://127.0.0.1:{port}/api/orders/queue/unprocessed?limit=1"
                ))
                .bearer_auth(TOKEN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(page["data"].as_array()?.len())
        }
        .await;
        if left == Some(0) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Every id answered 200 must be readable through the API.
async fn missing_events(port: u16, full: &[String], steady: &[String]) -> anyhow::Result<usize> {
    let client = reqwest::Client::new();
    let mut missing = 0;
    let ids: Vec<&String> = full.iter().chain(steady).collect();
    for chunk in ids.chunks(64) {
        let checks = chunk.iter().map(|id| {
            client
                .get(format!("http://127.0.0.1:{port}/api/events/{id}"))
                .bearer_auth(TOKEN)
                .send()
        });
        for result in futures::future::join_all(checks).await {
            if !result.map(|r| r.status().is_success()).unwrap_or(false) {
                missing += 1;
            }
        }
    }
    Ok(missing)
}

/// User plus system CPU time a process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .unwrap_or(0.0)
}

/// CPU time the whole machine was busy (user, nice, system, interrupts), in
/// seconds, from the first line of /proc/stat.
fn machine_cpu_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().next()?;
            let fields: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let busy = [0, 1, 2, 5, 6]
                .iter()
                .filter_map(|&i| fields.get(i))
                .sum::<f64>();
            Some(busy / ticks_per_second)
        })
        .unwrap_or(0.0)
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The same client against an axum route that does nothing.
async fn trivial_axum_ceiling(args: &Args) -> anyhow::Result<f64> {
    // Its own multi-thread runtime, as the server process has: the load
    // generator's runtime is not shared with it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let server = runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let app =
            axum::Router::new().route("/webhook/tiktok", axum::routing::post(|| async { "ok" }));
        axum::serve(listener, app).await
    });
    let run = load(
        &format!("http://127.0.0.1:{port}/webhook/tiktok"),
        &bodies(10_000_000, args.events),
        args.concurrency,
        None,
    )
    .await;
    server.abort();
    runtime.shutdown_background();
    Ok(run.rate())
}

/// One INSERT and one COMMIT per row, on the same kind of database and
/// durability settings: what intake would do without group commit.
async fn one_row_per_commit(url: &str, dir: &Path) -> anyhow::Result<f64> {
    let rows = 2_000;
    let started;
    if url.starts_with("sqlite") {
        let path = dir.join("ceiling.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
            .await?;
        started = Instant::now();
        for i in 0..rows {
            sqlx::query("INSERT INTO t (body) VALUES (?1)")
                .bind(format!("row {i}"))
                .execute(&mut conn)
                .await?;
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        conn.execute("CREATE TABLE bench_ceiling (id BIGSERIAL PRIMARY KEY, body TEXT)")
            .await?;
        started = Instant::now();
        for i in 0..rows {
            sqlx::query("INSERT INTO bench_ceiling (body) VALUES ($1)")
                .bind(format!("row {i}"))
                .execute(&mut conn)
                .await?;
        }
        conn.execute("DROP TABLE bench_ceiling").await?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}
