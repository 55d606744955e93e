//! The hand-off from intake to this instance's workers: jobs created leased,
//! leases that can be extended and given back, and a graceful stop that
//! gives back the leases of events still waiting in memory.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::SecretString;
use support::*;
use tiktok_webhook::{
    app::Application,
    clock::Clock,
    queue::{EventHandler, HandlerError},
    store::{Lease, Store},
    tiktok::{Event, WebhookVerifier},
};

/// A status event, verified as intake verifies it.
fn event(id: &str) -> Event {
    let body = status_event(id, &format!("57{id}"), "UNPAID", now());
    let signature = tiktok_webhook::tiktok::signature::sign(APP_KEY, APP_SECRET, body.as_bytes());
    let verifier = WebhookVerifier::new(APP_KEY, SecretString::from(APP_SECRET), None);
    let verified = verifier
        .verify(&[signature.as_bytes()], Bytes::from(body))
        .unwrap();
    Event::parse(verified).unwrap()
}

async fn open(url: &str) -> Store {
    let settings = settings(url, &[]);
    Store::open(&settings.database, settings.pool())
        .await
        .unwrap()
}

fn lease(owner: &str, until: DateTime<Utc>) -> Lease {
    Lease {
        owner: owner.to_owned(),
        until,
    }
}

async fn job(store: &Store, event_id: &str) -> (Option<String>, i64) {
    let event = store.event(event_id).await.unwrap().expect("stored");
    (event.status, event.attempts)
}

async fn a_job_created_leased_is_its_owners_until_the_lease_runs_out(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let store = open(&url).await;
    let now = Utc::now();
    let minute = TimeDelta::seconds(60);

    let stored = store
        .commit(&[event("7401")], Some(&lease("a", now + minute)))
        .await
        .unwrap();
    assert!(!stored[0].duplicate);
    assert_eq!(
        job(&store, "7401").await,
        (Some("running".into()), 1),
        "running its first attempt"
    );
    let claimed = store
        .claim_jobs("b", 10, now + minute * 2, now, true)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "another worker cannot take it");

    let ids = ["7401".to_owned()];
    let extended = store.extend_leases("b", &ids, now + minute * 2).await;
    assert!(extended.unwrap().is_empty(), "only the owner extends");
    let extended = store.extend_leases("a", &ids, now + minute * 2).await;
    assert_eq!(extended.unwrap(), ids);
    let later = now + minute + TimeDelta::seconds(30);
    let claimed = store
        .claim_jobs("b", 10, later + minute, later, true)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "the extended lease still holds");

    let expired = now + minute * 2 + TimeDelta::seconds(1);
    let claimed = store
        .claim_jobs("b", 10, expired + minute, expired, true)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "once it ran out, it is anyone's");
    assert_eq!(claimed[0].attempt, 2);
    store.close().await;
}

/// A handed job that waited in memory past its lease, and was claimed again
/// meanwhile by another worker of the same instance, is not run a second
/// time: its lease can no longer be extended.
async fn a_handed_job_claimed_again_by_its_own_instance_cannot_be_extended(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let store = open(&url).await;
    let now = Utc::now();
    let minute = TimeDelta::seconds(60);
    store
        .commit(&[event("7405")], Some(&lease("a", now + minute)))
        .await
        .unwrap();
    let later = now + minute * 2;
    let claimed = store
        .claim_jobs("a", 10, later + minute, later, true)
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "the expired lease is claimed by the same owner"
    );
    let ids = ["7405".to_owned()];
    let extended = store
        .extend_leases("a", &ids, later + minute)
        .await
        .unwrap();
    assert!(extended.is_empty(), "the handed copy lost its job");
    store.close().await;
}

async fn a_job_created_leased_is_given_back_with_its_owners_leases(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let store = open(&url).await;
    let now = Utc::now();
    let until = now + TimeDelta::seconds(60);
    store
        .commit(&[event("7402"), event("7403")], Some(&lease("a", until)))
        .await
        .unwrap();
    store.commit(&[event("7404")], None).await.unwrap();
    assert_eq!(job(&store, "7404").await, (Some("pending".into()), 0));

    assert_eq!(store.release_jobs("a", now).await.unwrap(), 2);
    assert_eq!(job(&store, "7402").await, (Some("pending".into()), 0));
    let claimed = store
        .claim_jobs("b", 10, until, Utc::now(), false)
        .await
        .unwrap();
    let mut ids: Vec<&str> = claimed.iter().map(|j| j.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["7402", "7403", "7404"]);
    assert!(claimed.iter().all(|j| j.attempt == 1));
    store.close().await;
}

/// A seller's handler that never finishes: the worker holding an event is
/// stuck with it, and the events after it wait in memory.
struct Stuck;

#[async_trait]
impl EventHandler for Stuck {
    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        std::future::pending().await
    }
}

async fn a_graceful_stop_gives_back_the_leases_of_events_waiting_in_memory(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    // One worker, one event at a time: room for two events in memory.
    let vars = [
        ("QUEUE_WORKERS", "1"),
        ("QUEUE_BATCH", "1"),
        ("JOB_LEASE", "10m"),
        ("SHUTDOWN_TIMEOUT", "1s"),
    ];
    let app = Application::build_with(
        settings(&url, &vars),
        Clock::system(),
        Some(Arc::new(Stuck)),
    )
    .await
    .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let ids = ["7411", "7412", "7413"];
    for id in ids {
        let body = status_event(id, &format!("57{id}"), "UNPAID", now());
        let response = client
            .post(format!("{address}/webhook/tiktok"))
            .header(
                "authorization",
                tiktok_webhook::tiktok::signature::sign(APP_KEY, APP_SECRET, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let store = open(&url).await;
    let mut running = 0;
    for id in ids {
        if job(&store, id).await.0.as_deref() == Some("running") {
            running += 1;
        }
    }
    assert_eq!(
        running, 2,
        "two leased at intake (one stuck, one waiting), one left due"
    );

    let _ = stop.send(());
    task.await.unwrap().unwrap();
    for id in ids {
        assert_eq!(
            job(&store, id).await,
            (Some("pending".into()), 0),
            "{id} is due again at once, not when a ten-minute lease runs out"
        );
    }
    store.close().await;
}

on_both_databases!(
    a_job_created_leased_is_its_owners_until_the_lease_runs_out,
    a_handed_job_claimed_again_by_its_own_instance_cannot_be_extended,
    a_job_created_leased_is_given_back_with_its_owners_leases,
    a_graceful_stop_gives_back_the_leases_of_events_waiting_in_memory,
);
