//! PostgreSQL stopped under load and started again: intake answers 503
//! quickly while it is down, never 200 for an event it did not store, and
//! resumes by itself once the database is back.

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use support::{cluster::Cluster, postgres::TestDatabase, *};

/// What one webhook request got.
struct Sent {
    event_id: String,
    status: u16,
    started: Instant,
    took: Duration,
}

const SENDERS: usize = 4;
/// Bounds on the load, whatever happens: requests per sender, and time.
const MAX_REQUESTS: usize = 3000;
const MAX_LOAD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_database_outage_gives_quick_503s_and_intake_resumes_after_it() {
    let Some(cluster) = Cluster::start("a_database_outage_gives_quick_503s_and_intake_resumes")
    else {
        return;
    };
    let database = TestDatabase::create_on(&cluster.url()).await;
    let app = Arc::new(spawn_app_at(&database.url, &[], tempfile::tempdir().unwrap()).await);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| tokio::spawn(send_until(app.clone(), n, sent.clone(), stop.clone())))
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.stop();
    let down_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health_started = Instant::now();
    let (health, _) = app.get("/health").await;
    let health_took = health_started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let up_at = Instant::now();
    cluster.start_again();
    wait_for_a_200_after(&sent, up_at).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }

    assert_eq!(health, 503, "/health while the database is down");
    assert!(
        health_took < Duration::from_secs(1),
        "/health took {health_took:?}"
    );
    assert_eq!(app.get("/health").await.0, 200, "/health once it is back");

    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let while_down: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.started >= down_at && s.started + s.took <= up_at)
        .collect();
    let slowest = while_down.iter().map(|s| s.took).max().unwrap_or_default();
    report(&sent, while_down.len(), slowest, down_at, up_at);
    assert!(
        !while_down.is_empty(),
        "requests were sent while it was down"
    );
    assert!(
        while_down.iter().all(|s| s.status == 503),
        "only 503 while down"
    );
    assert!(slowest < Duration::from_secs(1), "a 503 took {slowest:?}");
    assert!(sent.iter().all(|s| matches!(s.status, 200 | 503)));
    assert!(sent.iter().any(|s| s.status == 200 && s.started < down_at));
    assert!(sent.iter().any(|s| s.status == 200 && s.started > up_at));

    // Every 200 stands for a stored event.
    for s in sent.iter().filter(|s| s.status == 200) {
        let (status, _) = app.get(&format!("/api/events/{}", s.event_id)).await;
        assert_eq!(status, 200, "event {} was acknowledged", s.event_id);
    }
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("a sender still holds the app"),
    }
}

/// Sends distinct status events back to back until told to stop.
async fn send_until(
    app: Arc<TestApp>,
    sender: usize,
    sent: Arc<Mutex<Vec<Sent>>>,
    stop: Arc<AtomicBool>,
) {
    let began = Instant::now();
    for i in 0..MAX_REQUESTS {
        if stop.load(Ordering::Relaxed) || began.elapsed() > MAX_LOAD {
            return;
        }
        let event_id = format!("74000000{sender:02}{i:07}");
        let body = status_event(
            &event_id,
            &format!("57800000{sender:02}{i:07}"),
            "UNPAID",
            now(),
        );
        let started = Instant::now();
        let status = app.send(&body).await.status().as_u16();
        let took = started.elapsed();
        sent.lock().unwrap().push(Sent {
            event_id,
            status,
            started,
            took,
        });
    }
}

async fn wait_for_a_200_after(sent: &Mutex<Vec<Sent>>, after: Instant) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let resumed = sent
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.status == 200 && s.started > after);
        if resumed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("intake did not resume within 20 s of the database's restart");
}

/// The figures, on stderr past the harness's capture.
fn report(sent: &[Sent], while_down: usize, slowest: Duration, down_at: Instant, up_at: Instant) {
    use std::io::Write as _;
    let resumed = sent
        .iter()
        .filter(|s| s.status == 200 && s.started > up_at)
        .map(|s| s.started + s.took - up_at)
        .min()
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "outage: {} requests, {} answered 200, {while_down} sent while down for {:?} \
         (all 503, slowest {slowest:?}); first 200 {resumed:?} after the restart",
        sent.len(),
        sent.iter().filter(|s| s.status == 200).count(),
        up_at - down_at,
    );
}
