//! Builds the state and the router, binds the listener, serves, and shuts
//! down gracefully: stop accepting, finish requests in flight, let the writer
//! drain, close the database.

use anyhow::Context;
use std::{future::Future, sync::Arc, time::Duration};

use axum::{middleware, Extension, Router};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api,
    clock::Clock,
    config::Settings,
    error::{render_errors, ApiError},
    health, intake, openapi,
    queue::{self, EventHandler, Queue, QueueHandle},
    ratelimit::{self, RateLimits},
    security, serve,
    store::{writer::Writer, Store},
    telemetry::{self, RequestDone, RequestSpan},
    tiktok::WebhookVerifier,
};

/// How often per-address rate-limit state is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub writer: Writer,
    pub verifier: Arc<WebhookVerifier>,
    pub clock: Clock,
    /// Wakes this instance's queue workers (new events, manual retries).
    pub queue_wake: Arc<queue::Wake>,
    pub limits: Arc<RateLimits>,
}

/// Every route, each with its OpenAPI description.
fn surface(state: &AppState) -> OpenApiRouter<AppState> {
    let document = OpenApiRouter::new()
        .routes(routes!(openapi::document))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit_api,
        ));
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(intake::receive))
        .routes(routes!(health::webhook_health))
        .routes(routes!(health::health))
        .routes(routes!(health::metrics))
        .merge(document)
        .nest("/api", api::routes(state.clone()))
}

/// The whole HTTP surface. A plain function, so tests can drive it
/// in-process as well as over a socket.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let (routes, doc) = surface(&state).split_for_parts();
    let routes = routes
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state)
        .layer(Extension(openapi::finish(doc)))
        .layer(middleware::from_fn(telemetry::count_requests));
    // Innermost first: a panic becomes a 500 and a missed deadline a 408,
    // both of which render_errors shapes; the request id is set before
    // anything else sees the request.
    let routes = security::deadline(
        routes.layer(CatchPanicLayer::new()),
        settings.request_timeout,
    )
    .layer(middleware::from_fn(render_errors));
    security::harden(routes, &settings)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(RequestSpan)
                .on_response(RequestDone),
        )
        .layer(PropagateRequestIdLayer::new(telemetry::REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            telemetry::REQUEST_ID,
            MakeRequestUuid,
        ))
}

/// A bound, ready-to-serve application.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    writer_task: JoinHandle<()>,
    queue: QueueHandle,
}

impl Application {
    /// Opens the store (migrating it), starts the writer and binds the
    /// listener; port 0 picks a free port, read back with [`Self::port`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Clock::system(), None).await
    }

    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        Self::build_with(settings, clock, None).await
    }

    /// Builds with the seller's own [`EventHandler`], run for every stored
    /// event from the processing queue (before the forwarder, if any).
    pub async fn build_with(
        settings: Settings,
        clock: Clock,
        handler: Option<Arc<dyn EventHandler>>,
    ) -> anyhow::Result<Self> {
        telemetry::metrics_handle();
        let store = Store::open(&settings.database, settings.pool())
            .await
            .with_context(|| format!("DATABASE_URL: cannot open {}", settings.database.masked()))?;
        let stored = Arc::new(queue::Wake::default());
        let handler = queue::handler_for(&settings, handler)?;
        let queue = Queue::new(
            store.clone(),
            handler,
            settings.queue,
            clock.clone(),
            stored.clone(),
        );
        let (writer, writer_task) =
            Writer::spawn(store.clone(), stored.clone(), Some(queue.handoff()));
        let queue = queue.start();
        let verifier = WebhookVerifier::new(
            settings.app_key.clone(),
            settings.app_secret.clone(),
            settings.app_secret_previous.clone(),
        );
        let listener = TcpListener::bind((settings.host, settings.port))
            .await
            .with_context(|| {
                format!(
                    "HOST/PORT: cannot listen on {}:{}",
                    settings.host, settings.port
                )
            })?;
        let limits = Arc::new(RateLimits::new(
            settings.rate_limit_max,
            settings.rate_limit_window,
        ));
        let state = AppState {
            settings: Arc::new(settings),
            store,
            writer,
            verifier: Arc::new(verifier),
            clock,
            queue_wake: stored,
            limits,
        };
        Ok(Self {
            listener,
            state,
            writer_task,
            queue,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops within
    /// `SHUTDOWN_TIMEOUT`: no new connections, requests in flight finish,
    /// the writer commits what it holds, running jobs end or give their
    /// lease back, the database closes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            writer_task,
            queue,
        } = self;
        let store = state.store.clone();
        let bound = state.settings.queue.shutdown;
        let (stopping, stop_seen) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stopping.send(true);
        });
        let pruner = tokio::spawn(prune(state.limits.clone()));
        let header_timeout = state.settings.request_timeout;
        let server = serve::serve(
            listener,
            router(state),
            header_timeout,
            bound,
            stopped(stop_seen.clone()),
        );
        // Everything after the signal shares one bound: connections drain
        // while the queue stops, then the writer commits what it holds.
        let everything = async {
            let queue_stopping = async {
                stopped(stop_seen.clone()).await;
                queue.stop().await;
            };
            tokio::join!(server, queue_stopping);
            // The router and every Writer handle are gone with the server.
            let _ = writer_task.await;
        };
        let expired = async {
            stopped(stop_seen.clone()).await;
            tokio::time::sleep(bound).await;
        };
        tokio::select! {
            () = everything => {}
            () = expired => tracing::warn!("still busy at SHUTDOWN_TIMEOUT; stopping anyway"),
        }
        pruner.abort();
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Keeps per-address rate-limit state to the addresses seen lately.
async fn prune(limits: Arc<RateLimits>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        limits.prune();
    }
}

async fn stopped(mut seen: watch::Receiver<bool>) {
    let _ = seen.wait_for(|stop| *stop).await;
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
