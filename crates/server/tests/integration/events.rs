//! `POST /v1/events`: rows checked against the events' schema with their reasons, accepted
//! rows appended to the store's event log, and read by the next run.

use axum::http::StatusCode;

use crate::support::{get, post_json, send, served};

#[tokio::test]
async fn posted_events_are_checked_row_by_row_kept_and_read_by_the_next_run() {
    let s = served();
    let batch = r#"{"events": [
        {"account_id": "a18", "ts": "2025-03-10T09:00:00Z", "amount": 5},
        {"account_id": "a18", "ts": "2025-03-11T09:00:00Z", "amout": 5},
        {"account_id": "a18", "amount": 5},
        {"account_id": "a18", "ts": "2025-03-12T09:00:00Z", "amount": "12x"},
        [1, 2],
        {"account_id": "a18", "ts": "yesterday", "amount": 1},
        {"account_id": "a21", "ts": "2025-03-12T09:00:00+02:00", "amount": 2.25}
    ]}"#;
    let viewer = send(&s.router, post_json("/v1/events", &s.viewer, batch)).await;
    assert_eq!((viewer.status, viewer.code()), (StatusCode::FORBIDDEN, "forbidden".to_string()));
    let log = s.dir.path().join(".segmenta").join(segmenta_engine::EVENT_LOG);
    assert!(!log.exists(), "a refused request wrote the log");

    let answer = send(&s.router, post_json("/v1/events", &s.editor, batch)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let report = answer.json();
    assert_eq!((report["accepted"].as_u64(), report["rejected"].as_u64()), (Some(2), Some(5)), "{report}");
    assert_eq!(report["unknown_entities"].as_u64(), Some(0), "{report}");
    let rejects = report["rejects"].as_array().expect("rejects");
    let at = |i: usize| &rejects[i];
    assert_eq!(at(0)["index"].as_u64(), Some(1));
    assert_eq!(at(0)["column"].as_str(), Some("amout"));
    assert!(at(0)["reason"].as_str().unwrap_or_default().contains("did you mean `amount`"), "{}", at(0));
    assert_eq!((at(1)["index"].as_u64(), at(1)["column"].as_str()), (Some(2), Some("ts")));
    assert_eq!((at(2)["index"].as_u64(), at(2)["column"].as_str()), (Some(3), Some("amount")));
    assert!(at(2)["reason"].as_str().unwrap_or_default().contains("12x"), "{}", at(2));
    assert_eq!((at(3)["index"].as_u64(), at(3)["column"].as_str()), (Some(4), None));
    assert!(at(3)["reason"].as_str().unwrap_or_default().contains("not an array"), "{}", at(3));
    assert_eq!((at(4)["index"].as_u64(), at(4)["column"].as_str()), (Some(5), Some("ts")));
    assert!(at(4)["reason"].as_str().unwrap_or_default().contains("RFC 3339"), "{}", at(4));
    // The accepted rows are on disk, one canonical object per line, the instant in UTC.
    let posted = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<&str> = posted.lines().collect();
    assert_eq!(lines.len(), 2, "{posted}");
    assert!(lines[1].contains("2025-03-12T07:00:00.000000Z"), "{posted}");

    // A batch with an id is taken once, also by a server started afresh.
    let retried = r#"{"batch": "7f9c-01", "events": [{"account_id": "a21", "ts": "2025-03-13T09:00:00Z", "amount": 1}]}"#;
    let first = send(&s.router, post_json("/v1/events", &s.editor, retried)).await.json();
    assert_eq!((first["accepted"].as_u64(), first["duplicate"].as_bool()), (Some(1), Some(false)), "{first}");
    let again = send(&s.router, post_json("/v1/events", &s.editor, retried)).await.json();
    assert_eq!((again["accepted"].as_u64(), again["duplicate"].as_bool()), (Some(1), Some(true)), "{again}");
    let restarted = crate::support::router_on(s.project());
    let third = send(&restarted, post_json("/v1/events", &s.editor, retried)).await.json();
    assert_eq!(third["duplicate"].as_bool(), Some(true), "{third}");
    // An event of an entity the latest run does not have is kept, and counted as such.
    let stranger = r#"{"events": [{"account_id": "a99", "ts": "2025-03-13T09:00:00Z"}]}"#;
    let answer = send(&s.router, post_json("/v1/events", &s.editor, stranger)).await.json();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["unknown_entities"].as_u64()),
        (Some(1), Some(1)),
        "{answer}"
    );
    let kept = std::fs::read_to_string(&log).expect("the log");
    assert_eq!(kept.lines().count(), 5, "two events, a batch record and its event, one more: {kept}");
    let bad_id = r#"{"batch": "", "events": []}"#;
    let answer = send(&s.router, post_json("/v1/events", &s.editor, bad_id)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::BAD_REQUEST, "usage".to_string()),
        "{}",
        answer.text()
    );

    // Bodies that are not a batch.
    for (body, status, code) in [
        (r#"{"events": "#, StatusCode::BAD_REQUEST, "bad_json"),
        (r#"{"rows": []}"#, StatusCode::UNPROCESSABLE_ENTITY, "bad_request_body"),
    ] {
        let answer = send(&s.router, post_json("/v1/events", &s.editor, body)).await;
        assert_eq!((answer.status, answer.code()), (status, code.to_string()), "{body}: {}", answer.text());
    }
    let many = format!(r#"{{"events": [{}]}}"#, vec!["{}"; segmenta_engine::MAX_EVENTS + 1].join(","));
    let answer = send(&s.router, post_json("/v1/events", &s.editor, many)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::BAD_REQUEST, "usage".to_string()),
        "{}",
        answer.text()
    );
    let huge = format!(r#"{{"events": [{{"account_id": "{}"}}]}}"#, "x".repeat(segmenta_server::MAX_BODY));
    let answer = send(&s.router, post_json("/v1/events", &s.editor, huge)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(std::fs::read_to_string(&log).expect("the log"), kept, "refused batches changed the log");

    // Before the next run, a18 (pro, no orders) is not a pro buyer; after it, it is.
    let before = send(&s.router, get("/v1/entities/a18", Some(&s.viewer))).await.json();
    assert_eq!(before["values"]["orders"].as_i64(), Some(0), "{before}");
    let started = send(&s.router, post_json("/v1/runs", &s.editor, r#"{"as_of": "2025-03-31"}"#)).await;
    let id = started.json()["id"].as_u64().expect("an id");
    let run = crate::api::wait_for_run(&s, id).await;
    assert_eq!(run["state"].as_str(), Some("succeeded"), "{run}");
    let waited = std::time::Instant::now();
    let after = loop {
        let entity = send(&s.router, get("/v1/entities/a18", Some(&s.viewer))).await.json();
        if entity["values"]["orders"].as_i64() != Some(0) {
            break entity;
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(10), "still {entity}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(after["values"]["orders"].as_i64(), Some(1), "{after}");
    assert_eq!(after["values"]["revenue"].as_f64(), Some(5.0), "{after}");
    assert!(after["segments"].as_array().expect("segments").iter().any(|s| s == "pro_buyers"), "{after}");
    // a21's two events (the batch's once): 2.25 + 1.
    let a21 = send(&s.router, get("/v1/entities/a21", Some(&s.viewer))).await.json();
    assert_eq!(a21["values"]["revenue"].as_f64(), Some(3.25), "{a21}");
    assert_eq!(a21["values"]["orders"].as_i64(), Some(2), "{a21}");
}

#[tokio::test]
async fn a_project_without_events_refuses_posted_events() {
    let s = served();
    let toml = std::fs::read_to_string(s.dir.path().join("segmenta.toml")).expect("the file");
    let without: String = toml
        .replace("[events]\nsource = \"events.csv\"\nentity_key = \"account_id\"\ntime = \"ts\"\n", "")
        .replace("[traits]\norders = \"count()\"\nrevenue = \"sum(amount)\"\n", "")
        .replace(" and orders > 0", "");
    std::fs::write(s.dir.path().join("segmenta.toml"), without).expect("writes");
    let router = crate::support::router_on(s.project());
    let answer = send(&router, post_json("/v1/events", &s.editor, r#"{"events": []}"#)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::CONFLICT, "no_events".to_string()),
        "{}",
        answer.text()
    );
    assert!(answer.json()["hint"].as_str().unwrap_or_default().contains("[events]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshing_server_runs_by_itself_after_posted_events_and_on_its_sweep() {
    let s = served();
    let project = s.project();
    let state = std::thread::spawn(move || {
        let engine =
            std::sync::Arc::new(segmenta_engine::Engine::new(&Default::default()).expect("an engine"));
        segmenta_server::AppState::new(engine, project).expect("a state")
    })
    .join()
    .expect("the set-up thread");
    let router = segmenta_server::router(state.clone());
    let policy =
        segmenta_engine::Refresh { after_events: Some(std::time::Duration::from_secs(1)), sweep: None };
    let refresher = tokio::spawn(segmenta_server::refresh(state.clone(), policy));
    // Nothing posted: no run starts.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let runs = send(&router, get("/v1/runs", Some(&s.viewer))).await.json();
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(0), "{runs}");

    let batch = r#"{"events": [{"account_id": "a18", "ts": "2025-03-10T09:00:00Z", "amount": 5}]}"#;
    assert_eq!(send(&router, post_json("/v1/events", &s.editor, batch)).await.status, StatusCode::OK);
    // A run as of the project's default (now) starts by itself and is served once written.
    let waited = std::time::Instant::now();
    let entity = loop {
        let entity = send(&router, get("/v1/entities/a18", Some(&s.viewer))).await.json();
        if entity["values"]["orders"].as_i64() == Some(1) {
            break entity;
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(60), "no refresh: {entity}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(entity["segments"].as_array().expect("segments").iter().any(|s| s == "pro_buyers"), "{entity}");
    let runs = send(&router, get("/v1/runs", Some(&s.viewer))).await.json();
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1), "one run for one batch: {runs}");
    refresher.abort();

    // A sweep runs without events.
    let policy =
        segmenta_engine::Refresh { after_events: None, sweep: Some(std::time::Duration::from_secs(1)) };
    let sweeper = tokio::spawn(segmenta_server::refresh(state, policy));
    let waited = std::time::Instant::now();
    loop {
        let runs = send(&router, get("/v1/runs", Some(&s.viewer))).await.json();
        if runs["runs"].as_array().map(Vec::len) >= Some(2) {
            break;
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(30), "no sweep: {runs}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    sweeper.abort();
}

#[tokio::test]
async fn changes_are_listed_to_viewers_and_a_bad_limit_is_refused() {
    let s = served();
    let none = send(&s.router, get("/v1/changes", None)).await;
    assert_eq!((none.status, none.code()), (StatusCode::UNAUTHORIZED, "unauthorized".to_string()));
    // A router without the live thread (`serve` starts it): no changes, no live view.
    let listed = send(&s.router, get("/v1/changes?after=0&limit=10", Some(&s.viewer))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let body = listed.json();
    assert_eq!(body["changes"].as_array().map(Vec::len), Some(0), "{body}");
    assert_eq!((body["next_after"].as_i64(), body["live"].is_null()), (Some(0), true), "{body}");
    for limit in ["0", "10001"] {
        let bad = send(&s.router, get(&format!("/v1/changes?limit={limit}"), Some(&s.viewer))).await;
        assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "usage".to_string()), "{limit}");
    }
    let typo = send(&s.router, get("/v1/changes?limit=ten", Some(&s.viewer))).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST, "{}", typo.text());
}
