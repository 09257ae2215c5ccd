//! `segmenta serve`: an HTTP API (axum) over the engine. The router is built from [`ROUTES`],
//! the same list the OpenAPI document is checked against; every `/v1` route needs a bearer
//! token ([`auth`]); every failure is a JSON [`error::ErrorBody`] whose status is chosen in
//! [`error::status_of`]; a panic in a handler is a 500 `internal`, and the request log
//! carries method, route template, status and latency only (no token, body or query value).

pub mod api;
pub mod auth;
pub mod error;
pub mod openapi;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use segmenta_engine::{BackgroundRuns, Engine, Project, ServedProject, TokenVerifier};

use crate::error::ApiError;

/// The largest request body taken, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engine (runtime and worker pool).
    pub engine: Arc<Engine>,
    /// The project and its current run.
    pub served: Arc<ServedProject>,
    /// The project's tokens.
    pub tokens: Arc<TokenVerifier>,
    /// The runs started over HTTP.
    pub runs: Arc<BackgroundRuns>,
}

impl AppState {
    /// The state of a server of `project` (it opens the store's run log, marking a run a
    /// stopped server left running as interrupted).
    pub fn new(engine: Arc<Engine>, project: Project) -> segmenta_engine::Result<AppState> {
        let tokens = Arc::new(TokenVerifier::new(&project));
        let runs = Arc::new(BackgroundRuns::open(&project)?);
        Ok(AppState { engine, served: Arc::new(ServedProject::new(project)), tokens, runs })
    }
}

/// Whether a route needs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone may call it.
    Open,
    /// A live token (the handler checks the role).
    Token,
}

/// Every route: method, path (axum's `{name}` syntax, as in the OpenAPI document), access.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/health", Access::Open),
    ("GET", "/openapi.json", Access::Open),
    ("GET", "/v1/segments", Access::Token),
    ("GET", "/v1/segments/{name}", Access::Token),
    ("PUT", "/v1/segments/{name}", Access::Token),
    ("DELETE", "/v1/segments/{name}", Access::Token),
    ("GET", "/v1/segments/{name}/members", Access::Token),
    ("GET", "/v1/entities/{id}", Access::Token),
    ("GET", "/v1/entities/{id}/why/{segment}", Access::Token),
    ("POST", "/v1/preview", Access::Token),
    ("GET", "/v1/tokens", Access::Token),
    ("POST", "/v1/events", Access::Token),
    ("GET", "/v1/changes", Access::Token),
    ("POST", "/v1/runs", Access::Token),
    ("GET", "/v1/runs", Access::Token),
    ("GET", "/v1/runs/{id}", Access::Token),
];

fn handler(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("GET", "/health") => get(routes::health),
        ("GET", "/openapi.json") => get(openapi::serve_document),
        ("GET", "/v1/segments") => get(routes::segments),
        ("GET", "/v1/segments/{name}") => get(routes::segment),
        ("PUT", "/v1/segments/{name}") => put(routes::save_segment),
        ("DELETE", "/v1/segments/{name}") => delete(routes::delete_segment),
        ("GET", "/v1/segments/{name}/members") => get(routes::members),
        ("GET", "/v1/entities/{id}") => get(routes::entity),
        ("GET", "/v1/entities/{id}/why/{segment}") => get(routes::why),
        ("POST", "/v1/events") => post(routes::post_events),
        ("GET", "/v1/changes") => get(routes::changes),
        ("POST", "/v1/preview") => post(routes::preview),
        ("GET", "/v1/tokens") => get(routes::tokens),
        ("POST", "/v1/runs") => post(routes::start_run),
        ("GET", "/v1/runs") => get(routes::runs),
        ("GET", "/v1/runs/{id}") => get(routes::run),
        _ => MethodRouter::new(),
    }
}

/// The router of the API over `state`.
pub fn router(state: AppState) -> Router {
    let mut open = Router::new();
    let mut protected = Router::new();
    let mut paths: Vec<(&str, Access)> = Vec::new();
    for &(_, path, access) in ROUTES {
        if !paths.iter().any(|(p, _)| *p == path) {
            paths.push((path, access));
        }
    }
    for (path, access) in paths {
        // Every method of a path on one method router, with one 405 for the others.
        let route = ROUTES
            .iter()
            .filter(|(_, p, _)| *p == path)
            .fold(MethodRouter::new(), |route, (method, _, _)| route.merge(handler(method, path)))
            .fallback(routes::wrong_method);
        match access {
            Access::Open => open = open.route(path, route),
            Access::Token => protected = protected.route(path, route),
        }
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    layered(open.merge(protected), state)
}

/// `routes` with what every answer goes through: the JSON 404 for unknown paths, the body
/// limit, the request log and the panic guard (public so that tests can put a route of their
/// own behind the same layers).
pub fn layered(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(request_log))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// One line per request: method, route template, status, latency. Never the path's values,
/// the query string, headers or bodies (ids and tokens are personal data or secrets).
async fn request_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or("(no route)");
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    tracing::info!(target: "segmenta::http", method = %method, route, status, latency_us, "request");
    response
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic's message may hold request data: it stays out of the answer and the log.
    tracing::error!(target: "segmenta::http", "a handler panicked");
    ApiError::internal("the server failed on this request").into_response()
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// When the server runs the project by itself (default: never).
    pub refresh: segmenta_engine::Refresh,
    /// Whether memberships follow posted events without a run
    /// ([`ServedProject::follow_events`]).
    pub live: bool,
}

/// Serves `state` until `shutdown` completes; calls `ready` with the bound address once it
/// listens.
pub async fn serve(
    state: AppState,
    options: &ServeOptions,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The latest run is loaded while the server starts listening (seconds at a million
    // accounts), so the first request does not wait for it; a project without a run yet
    // answers `no_run` until one lands.
    let served = state.served.clone();
    tokio::task::spawn_blocking(move || served.current().ok());
    if options.refresh.enabled() {
        tokio::spawn(refresh(state.clone(), options.refresh));
    }
    if options.live {
        state.served.follow_events(state.engine.clone()).map_err(std::io::Error::other)?;
    }
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    ready(listener.local_addr()?);
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// Runs the project whenever `policy` says one is due ([`segmenta_engine::Refresh::due`], then
/// `BackgroundRuns::refresh`), looking once a second; the runs are background runs like those of `POST /v1/runs`.
pub async fn refresh(state: AppState, policy: segmenta_engine::Refresh) {
    let mut last = Instant::now();
    let mut posted_at_last = state.served.events_posted();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let posted = state.served.events_posted();
        if !policy.due(last.elapsed(), posted > posted_at_last) {
            continue;
        }
        let (engine, served, runs) = (state.engine.clone(), state.served.clone(), state.runs.clone());
        let started = tokio::task::spawn_blocking(move || runs.refresh(engine, served.project())).await;
        match started {
            Ok(Ok(Some(id))) => {
                tracing::info!(target: "segmenta::http", run = id, "refresh run started");
                (last, posted_at_last) = (Instant::now(), posted);
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                tracing::warn!(target: "segmenta::http", code = segmenta_engine::ErrorCode::code(&error), "a refresh run could not start");
                (last, posted_at_last) = (Instant::now(), posted);
            }
            Err(_) => tracing::error!(target: "segmenta::http", "the refresh check panicked"),
        }
    }
}

/// Serves `state` on a runtime of its own until SIGINT or SIGTERM (the CLI's entry); calls
/// `ready` with the bound address once it listens.
pub fn serve_until_signal(
    state: AppState,
    options: &ServeOptions,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("segmenta-http").build()?;
    runtime.block_on(serve(state, options, ready, stop_signal()))
}

async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// The methods [`ROUTES`] uses, as `http` methods.
pub fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET)
}
