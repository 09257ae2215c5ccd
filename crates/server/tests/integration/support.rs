//! A small project run twice (two snapshots), a router over it, and requests to that router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use segmenta_engine::{AsOf, Engine, EngineOptions, NoProgress, Project, Role, RunOptions};
use tower::ServiceExt;

pub const TOML: &str = r#"[project]
name = "served"
entity = "account"

[entities.account]
source = "accounts.csv"
key = "id"

[events]
source = "events.csv"
entity_key = "account_id"
time = "ts"

[traits]
orders = "count()"
revenue = "sum(amount)"

[segments.big]
rule = "employees >= 100"
description = "accounts with 100 or more employees"

[segments.pro_buyers]
rule = "plan = 'pro' and orders > 0"

[schemes.size]
tiers = [{ name = "enterprise", rule = "employees >= 1000" }, { name = "mid", rule = "employees >= 100" }]
otherwise = "small"
"#;

/// Accounts a1 .. a23 (ids in natural order differ from text order: a2 < a10).
pub fn accounts() -> String {
    let mut text = String::from("id,plan,employees,region\n");
    for n in 1..=23 {
        let plan = if n % 3 == 0 { "pro" } else { "free" };
        let employees = if n % 7 == 0 { String::new() } else { (n * n * 5).to_string() };
        text.push_str(&format!("a{n},{plan},{employees},\"north, east\"\n"));
    }
    text
}

/// Purchases: a3, a6, a9 in January; a12 and a15 in February.
pub fn events() -> String {
    let mut text = String::from("account_id,ts,amount\n");
    for (id, day) in [
        ("a3", "2025-01-05"),
        ("a6", "2025-01-06"),
        ("a9", "2025-01-07"),
        ("a12", "2025-02-03"),
        ("a15", "2025-02-04"),
    ] {
        text.push_str(&format!("{id},{day}T10:00:00Z,12.5\n"));
    }
    text
}

pub struct Served {
    pub dir: tempfile::TempDir,
    pub router: axum::Router,
    pub viewer: String,
    pub editor: String,
    pub admin: String,
}

impl Served {
    pub fn project(&self) -> Project {
        Project::load(self.dir.path()).expect("the project loads")
    }
}

/// The project, run as of 2025-01-31 and 2025-02-28, with a token of each role (set up on a
/// thread of its own: the engine blocks on its own runtime, which an async test may not).
pub fn served() -> Served {
    std::thread::spawn(set_up).join().expect("the set-up thread")
}

fn set_up() -> Served {
    let dir = tempfile::tempdir().expect("a folder");
    std::fs::write(dir.path().join("segmenta.toml"), TOML).expect("writes");
    std::fs::write(dir.path().join("accounts.csv"), accounts()).expect("writes");
    std::fs::write(dir.path().join("events.csv"), events()).expect("writes");
    let project = Project::load(dir.path()).expect("loads");
    let engine = Arc::new(Engine::new(&EngineOptions { threads: Some(2) }).expect("an engine"));
    for as_of in ["2025-01-31", "2025-02-28"] {
        let options = RunOptions {
            as_of: Some(AsOf::parse(as_of).expect("a date")),
            threads: Some(2),
            ..RunOptions::default()
        };
        engine.run(&project, &options, &NoProgress).expect("runs");
    }
    let token = |role, name| segmenta_engine::create_token(&project, role, name).expect("a token").secret;
    let (viewer, editor, admin) =
        (token(Role::Viewer, "reader"), token(Role::Editor, "writer"), token(Role::Admin, "boss"));
    let router = segmenta_server::router(segmenta_server::AppState::new(engine, project).expect("a state"));
    Served { dir, router, viewer, editor, admin }
}

/// A new router on `project` (a restarted server), set up on a thread of its own.
pub fn router_on(project: Project) -> axum::Router {
    std::thread::spawn(move || {
        let engine = Arc::new(Engine::new(&EngineOptions::default()).expect("an engine"));
        segmenta_server::router(segmenta_server::AppState::new(engine, project).expect("a state"))
    })
    .join()
    .expect("the set-up thread")
}

/// An answer: status, content type, body.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

pub async fn send(router: &axum::Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = response.into_body().collect().await.expect("a body").to_bytes().to_vec();
    Answer { status, content_type, headers, body }
}

pub fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).expect("a request")
}

pub fn post_json(path: &str, token: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("a request")
}
