//! Issue 13: every endpoint through the real router, every role, bad requests.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::support::{get, post_json, send, served};

#[tokio::test]
async fn health_and_the_document_are_open_and_everything_else_needs_a_live_token() {
    let s = served();
    let health = send(&s.router, get("/health", None)).await;
    assert_eq!((health.status, health.json()["status"].as_str()), (StatusCode::OK, Some("ok")));
    assert_eq!(send(&s.router, get("/openapi.json", None)).await.status, StatusCode::OK);
    for (method, path, access) in segmenta_server::ROUTES {
        if *access == segmenta_server::Access::Open {
            continue;
        }
        let path = path.replace("{name}", "big").replace("{id}", "a1").replace("{segment}", "big");
        let request = Request::builder().method(*method).uri(&path).body(Body::empty()).expect("a request");
        let answer = send(&s.router, request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(answer.code(), "unauthorized");
        assert_eq!(answer.headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    }
    let bad = send(&s.router, get("/v1/segments", Some("sgm_0000"))).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::UNAUTHORIZED, "invalid_token".to_string()));
    let basic = Request::get("/v1/segments").header(header::AUTHORIZATION, "Basic abc").body(Body::empty());
    assert_eq!(send(&s.router, basic.expect("a request")).await.status, StatusCode::UNAUTHORIZED);

    // A revoked token is refused within a second, while the server runs.
    assert_eq!(send(&s.router, get("/v1/segments", Some(&s.editor))).await.status, StatusCode::OK);
    segmenta_engine::revoke_token(&s.project(), "writer").expect("revokes");
    tokio::time::sleep(segmenta_engine::TOKEN_REFRESH + std::time::Duration::from_millis(100)).await;
    let revoked = send(&s.router, get("/v1/segments", Some(&s.editor))).await;
    assert_eq!((revoked.status, revoked.code()), (StatusCode::UNAUTHORIZED, "invalid_token".to_string()));
}

#[tokio::test]
async fn roles_below_the_one_a_route_needs_get_403_and_token_lists_hold_no_secrets() {
    let s = served();
    for token in [&s.viewer, &s.editor] {
        let answer = send(&s.router, get("/v1/tokens", Some(token))).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::FORBIDDEN, "forbidden".to_string()));
        assert!(answer.json()["hint"].as_str().expect("a hint").contains("--role admin"));
    }
    let answer = send(&s.router, get("/v1/tokens", Some(&s.admin))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let listed = answer.json();
    let names: Vec<&str> =
        listed["tokens"].as_array().expect("tokens").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["reader", "writer", "boss"]);
    for secret in [&s.viewer, &s.editor, &s.admin] {
        assert!(!answer.text().contains(secret.as_str()), "a secret in the token list");
    }
}

#[tokio::test]
async fn segments_list_sizes_of_the_latest_run_and_a_segment_its_rule_and_history() {
    let s = served();
    let project = s.project();
    let summary = segmenta_engine::latest_summary(&project).expect("a summary");
    let list = send(&s.router, get("/v1/segments", Some(&s.viewer))).await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    assert_eq!(list["as_of"].as_str(), Some(summary.as_of.as_str()));
    assert_eq!(list["entities"].as_u64(), Some(23));
    let served: Vec<(String, u64, String)> = list["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("a name").to_string(),
                s["size"].as_u64().expect("a size"),
                s["kind"].as_str().expect("a kind").to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, String)> = summary
        .segments
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.size,
                serde_json::to_value(s.kind).expect("a kind").as_str().expect("text").to_string(),
            )
        })
        .collect();
    assert_eq!(served, expected);
    assert!(served.iter().any(|(n, _, k)| n == "size.enterprise" && k == "scheme"));

    let detail = send(&s.router, get("/v1/segments/pro_buyers", Some(&s.viewer))).await.json();
    assert_eq!(detail["rule"].as_str(), Some("plan = 'pro' and orders > 0"));
    let history = segmenta_engine::history(&project, "pro_buyers").expect("a history");
    let points = detail["history"].as_array().expect("history");
    assert_eq!(points.len(), 2);
    for (point, expected) in points.iter().zip(&history.points) {
        assert_eq!(point["size"].as_u64(), Some(expected.size));
        assert_eq!(point["entered"].as_u64(), Some(expected.entered));
        assert_eq!(point["exited"].as_u64(), Some(expected.exited));
    }
    // a3, a6, a9 bought in January; a12 and a15 entered in February.
    assert_eq!((points[0]["size"].as_u64(), points[1]["entered"].as_u64()), (Some(3), Some(2)));
    // KPIs as `segmenta kpis --compare` the snapshot before gives them.
    let snapshots = segmenta_engine::snapshots(&project).expect("snapshots");
    let options = segmenta_engine::KpiOptions {
        at: Some(snapshots[1].id.to_string()),
        compare: Some(snapshots[0].id.to_string()),
        ..Default::default()
    };
    let expected = std::thread::spawn(move || {
        let engine = segmenta_engine::Engine::new(&Default::default()).expect("an engine");
        engine.kpis(&project, &options, &segmenta_engine::NoProgress).expect("kpis")
    })
    .join()
    .expect("the kpis thread");
    let row = expected.rows.iter().find(|r| r.name == "pro_buyers").expect("a row");
    assert_eq!(detail["kpis"]["size"].as_u64(), Some(row.size));
    assert_eq!(detail["kpis"]["logo_retention"].as_f64(), row.logo_retention);
    assert_eq!(detail["kpis"]["acquired"].as_u64(), row.acquired);
    assert!(row.logo_retention.is_some(), "a comparison was made");
    assert_eq!(detail["compared_with"].as_str(), Some(snapshots[0].as_of.as_str()));
    assert_eq!(detail["population"]["size"].as_u64(), Some(23));
    let big = send(&s.router, get("/v1/segments/big", Some(&s.viewer))).await.json();
    assert_eq!(big["description"].as_str(), Some("accounts with 100 or more employees"));

    let unknown = send(&s.router, get("/v1/segments/bigg", Some(&s.viewer))).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "unknown_segment".to_string()));
    assert!(unknown.json()["hint"].as_str().expect("a hint").contains("did you mean `big`"));
}

#[tokio::test]
async fn members_page_by_cursor_in_natural_order_and_stream_as_csv() {
    let s = served();
    let expected = segmenta_engine::members(&s.project(), "size.small").expect("members");
    assert!(expected.len() > 5, "enough members to page: {expected:?}");
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/segments/size.small/members?limit=4&cursor={c}"),
            None => "/v1/segments/size.small/members?limit=4".to_string(),
        };
        let page = send(&s.router, get(&path, Some(&s.viewer))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let page = page.json();
        assert_eq!(page["size"].as_u64(), Some(expected.len() as u64));
        let ids = page["members"].as_array().expect("members");
        assert!(ids.len() <= 4);
        paged.extend(ids.iter().map(|id| id.as_str().expect("an id").to_string()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, expected, "pages in natural order, each member once");
    assert_eq!(pages, expected.len().div_ceil(4));

    let csv = Request::get("/v1/segments/size.small/members")
        .header(header::AUTHORIZATION, format!("Bearer {}", s.viewer))
        .header(header::ACCEPT, "text/csv")
        .body(Body::empty())
        .expect("a request");
    let csv = send(&s.router, csv).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"));
    let lines: Vec<String> = csv.text().lines().map(String::from).collect();
    assert_eq!(lines[0], "entity_id");
    assert_eq!(&lines[1..], &expected[..]);

    for (query, code) in
        [("limit=0", "usage"), ("limit=10001", "usage"), ("cursor=zz", "usage"), ("limit=x", "bad_query")]
    {
        let answer =
            send(&s.router, get(&format!("/v1/segments/big/members?{query}"), Some(&s.viewer))).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code.to_string()), "{query}");
    }
    let unknown = send(&s.router, get("/v1/segments/nope/members", Some(&s.viewer))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_entity_has_its_values_and_segments() {
    let s = served();
    let project = s.project();
    let answer = send(&s.router, get("/v1/entities/a12", Some(&s.viewer))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let entity = answer.json();
    let values = &entity["values"];
    assert_eq!(values["plan"].as_str(), Some("pro"));
    assert_eq!(values["employees"].as_i64(), Some(720));
    assert_eq!(values["orders"].as_i64(), Some(1));
    assert_eq!(values["revenue"].as_f64(), Some(12.5));
    assert_eq!(values["region"].as_str(), Some("north, east"));
    assert_eq!(values["size"].as_str(), Some("mid"));
    let segments: BTreeSet<String> = entity["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s.as_str().expect("a name").to_string())
        .collect();
    let expected: BTreeSet<String> = project
        .config
        .segment_names()
        .into_iter()
        .filter(|name| {
            segmenta_engine::members(&project, name).expect("members").iter().any(|id| id == "a12")
        })
        .collect();
    assert_eq!(segments, expected);
    assert!(segments.contains("pro_buyers") && segments.contains("big"));
    // A missing value is null, not absent.
    let a7 = send(&s.router, get("/v1/entities/a7", Some(&s.viewer))).await.json();
    assert!(a7["values"]["employees"].is_null() && a7["values"].get("employees").is_some());

    let unknown = send(&s.router, get("/v1/entities/zz9", Some(&s.viewer))).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "unknown_entity".to_string()));
}

#[tokio::test]
async fn previews_count_a_rule_or_locate_its_problems_and_bad_bodies_are_refused() {
    let s = served();
    let answer = send(
        &s.router,
        post_json("/v1/preview", &s.viewer, r#"{"rule": "employees >= 100 and plan = 'free'", "sample": 3}"#),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let expected =
        segmenta_engine::preview(&s.project(), "employees >= 100 and plan = 'free'", 3).expect("previews");
    let preview = answer.json();
    assert_eq!(preview["size"].as_u64(), Some(expected.size));
    assert_eq!(preview["sample"].as_array().map(Vec::len), Some(3));

    let bad_rule =
        send(&s.router, post_json("/v1/preview", &s.viewer, r#"{"rule": "plan = 'pro' and employes > 3"}"#))
            .await;
    assert_eq!(bad_rule.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad_rule.text());
    let body = bad_rule.json();
    assert_eq!(body["code"].as_str(), Some("unknown_attribute"));
    assert_eq!((body["line"].as_u64(), body["column"].as_u64()), (Some(1), Some(18)));
    assert!(body["hint"].as_str().expect("a hint").contains("employees"));
    assert_eq!(body["problems"][0]["span"], serde_json::json!([17, 25]));

    let cases: [(&str, StatusCode, &str); 4] = [
        ("{\"rule\": \"plan = 'pro'\",\n \"sample\": }", StatusCode::BAD_REQUEST, "bad_json"),
        (r#"{"sample": 3}"#, StatusCode::UNPROCESSABLE_ENTITY, "bad_request_body"),
        (r#"{"rule": "x", "extra": 1}"#, StatusCode::UNPROCESSABLE_ENTITY, "bad_request_body"),
        (r#"{"rule": "plan = 'pro'", "sample": 5000}"#, StatusCode::BAD_REQUEST, "usage"),
    ];
    for (body, status, code) in cases {
        let answer = send(&s.router, post_json("/v1/preview", &s.viewer, body)).await;
        assert_eq!((answer.status, answer.code()), (status, code.to_string()), "{body}: {}", answer.text());
    }
    let syntax =
        send(&s.router, post_json("/v1/preview", &s.viewer, "{\"rule\": \"plan = 'pro'\",\n \"sample\": }"))
            .await
            .json();
    assert_eq!(syntax["line"].as_u64(), Some(2), "{syntax}");

    let huge = format!(r#"{{"rule": "{}"}}"#, "x".repeat(segmenta_server::MAX_BODY + 10));
    let too_large = send(&s.router, post_json("/v1/preview", &s.viewer, huge)).await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".to_string())
    );
    let plain = Request::post("/v1/preview")
        .header(header::AUTHORIZATION, format!("Bearer {}", s.viewer))
        .body(Body::from(r#"{"rule": "plan = 'pro'"}"#))
        .expect("a request");
    assert_eq!(send(&s.router, plain).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors_and_a_panic_is_a_500() {
    let s = served();
    let nowhere = send(&s.router, get("/v2/nothing", Some(&s.viewer))).await;
    assert_eq!((nowhere.status, nowhere.code()), (StatusCode::NOT_FOUND, "no_route".to_string()));
    let delete = Request::delete("/health").body(Body::empty()).expect("a request");
    let wrong = send(&s.router, delete).await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".to_string())
    );

    let project = s.project();
    let engine = std::sync::Arc::new(segmenta_engine::Engine::new(&Default::default()).expect("an engine"));
    let state = segmenta_server::AppState::new(engine, project).expect("a state");
    let boom = axum::Router::new().route(
        "/boom",
        axum::routing::get(|| async {
            if std::hint::black_box(true) {
                panic!("secret a12 detail");
            }
            "unreachable"
        }),
    );
    let router = segmenta_server::layered(boom, state);
    let answer = send(&router, get("/boom", None)).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::INTERNAL_SERVER_ERROR, "internal".to_string()));
    assert!(!answer.text().contains("a12"), "the panic's message stays out of the answer");
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_exactly_the_routes() {
    let s = served();
    let document = send(&s.router, get("/openapi.json", None)).await.json();
    assert!(document["openapi"].as_str().expect("a version").starts_with("3.1"), "{}", document["openapi"]);
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("an item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> =
        segmenta_server::ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, routed);
    // Each documented route is served (in the table's order: a segment is saved, then deleted).
    for (method, path, _) in segmenta_server::ROUTES {
        let name = if *method == "GET" { "big" } else { "scratch" };
        let id = if path.starts_with("/v1/runs") { "1" } else { "a1" };
        let path = path.replace("{name}", name).replace("{id}", id).replace("{segment}", "big");
        let body = match path.as_str() {
            "/v1/runs" => "{}",
            "/v1/events" => r#"{"events": [{"account_id": "a1", "ts": "2025-02-01T00:00:00Z"}]}"#,
            _ => r#"{"rule": "plan = 'pro'"}"#,
        };
        let request = Request::builder()
            .method(*method)
            .uri(&path)
            .header(header::AUTHORIZATION, format!("Bearer {}", s.admin))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("a request");
        let answer = send(&s.router, request).await;
        assert!(answer.status.is_success(), "{method} {path}: {} {}", answer.status, answer.text());
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    wait_for_run(&s, 1).await;
}

/// Polls `GET /v1/runs/{id}` until the run is no longer running; its last state.
pub(crate) async fn wait_for_run(s: &crate::support::Served, id: u64) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let run = send(&s.router, get(&format!("/v1/runs/{id}"), Some(&s.viewer))).await.json();
        if run["state"] != "running" {
            return run;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "run {id} still running: {run}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn runs_start_in_the_background_and_reads_switch_to_them_once_written() {
    let s = served();
    let viewer = send(&s.router, post_json("/v1/runs", &s.viewer, "{}")).await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    for (body, status, code) in [
        (r#"{"as_of": "March"}"#, StatusCode::BAD_REQUEST, "invalid_as_of"),
        (r#"{"as_of": "#, StatusCode::BAD_REQUEST, "bad_json"),
        (r#"{"asof": "2025-03-31"}"#, StatusCode::UNPROCESSABLE_ENTITY, "bad_request_body"),
    ] {
        let answer = send(&s.router, post_json("/v1/runs", &s.editor, body)).await;
        assert_eq!((answer.status, answer.code()), (status, code.to_string()), "{body}: {}", answer.text());
    }
    let before = send(&s.router, get("/v1/segments", Some(&s.viewer))).await.json();
    assert_eq!(before["as_of"].as_str(), Some("2025-03-01T00:00:00Z"));

    let started = send(&s.router, post_json("/v1/runs", &s.editor, r#"{"as_of": "2025-03-31"}"#)).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
    let id = started.json()["id"].as_u64().expect("an id");
    assert_eq!(
        started.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()),
        Some(format!("/v1/runs/{id}").as_str())
    );
    let run = wait_for_run(&s, id).await;
    assert_eq!(run["state"].as_str(), Some("succeeded"), "{run}");
    assert_eq!(run["as_of"].as_str(), Some("2025-04-01T00:00:00Z"));
    assert_eq!(run["entities"].as_u64(), Some(23));
    assert!(!run["segments"].as_array().expect("segments").is_empty());

    // The server serves the new run once it is in place (it looks at most every second).
    let waited = std::time::Instant::now();
    loop {
        let list = send(&s.router, get("/v1/segments", Some(&s.viewer))).await.json();
        if list["as_of"] == "2025-04-01T00:00:00Z" {
            break;
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(10), "still serving {}", list["as_of"]);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let listed = send(&s.router, get("/v1/runs", Some(&s.viewer))).await.json();
    assert_eq!(listed["runs"][0]["id"].as_u64(), Some(id));
    // A new server on the same project keeps the list (the run log is in the store).
    let project = s.project();
    let restarted = crate::support::router_on(project);
    let kept = send(&restarted, get(&format!("/v1/runs/{id}"), Some(&s.viewer))).await.json();
    assert_eq!((kept["state"].as_str(), kept["entities"].as_u64()), (Some("succeeded"), Some(23)), "{kept}");
    assert_eq!(kept["segments"], run["segments"]);
    let unknown = send(&s.router, get("/v1/runs/999", Some(&s.viewer))).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "unknown_run".to_string()));
    assert_eq!(send(&s.router, get("/v1/runs/x", Some(&s.viewer))).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn why_explains_a_membership_with_truths_operands_and_tiers() {
    let s = served();
    let answer = send(&s.router, get("/v1/entities/a12/why/pro_buyers", Some(&s.viewer))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let why = answer.json();
    assert_eq!(
        (why["member"].as_bool(), why["rule"].as_str()),
        (Some(true), Some("plan = 'pro' and orders > 0"))
    );
    let tree = &why["tree"];
    assert_eq!(tree["truth"].as_str(), Some("true"));
    let children = tree["children"].as_array().expect("children");
    assert_eq!(children[0]["text"].as_str(), Some("plan = 'pro'"));
    assert_eq!(children[0]["operands"][0]["value"].as_str(), Some("pro"));
    assert_eq!(children[1]["operands"][0], serde_json::json!({"text": "orders", "value": 1}));

    // A tier: the tiers tried before it, each false.
    let tier = send(&s.router, get("/v1/entities/a12/why/size.mid", Some(&s.viewer))).await.json();
    let tried: Vec<(&str, &str)> = tier["scheme"]["tried"]
        .as_array()
        .expect("tiers tried")
        .iter()
        .map(|t| (t["tier"].as_str().expect("a tier"), t["tree"]["truth"].as_str().expect("a truth")))
        .collect();
    assert_eq!(tried, [("enterprise", "false"), ("mid", "true")]);
    assert_eq!(tier["member"].as_bool(), Some(true));

    // A missing value: unknown, and not a member.
    let a7 = send(&s.router, get("/v1/entities/a7/why/big", Some(&s.viewer))).await.json();
    assert_eq!((a7["tree"]["truth"].as_str(), a7["member"].as_bool()), (Some("unknown"), Some(false)));
    assert!(a7["tree"]["operands"][0]["value"].is_null());

    for (path, code) in
        [("/v1/entities/zz/why/big", "unknown_entity"), ("/v1/entities/a7/why/bgi", "unknown_segment")]
    {
        let answer = send(&s.router, get(path, Some(&s.viewer))).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, code.to_string()), "{path}");
    }
}

fn put_json(path: &str, token: &str, body: &str) -> Request<Body> {
    Request::put(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a request")
}

fn delete(path: &str, token: &str) -> Request<Body> {
    Request::delete(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("a request")
}

#[tokio::test]
async fn editors_save_and_delete_rule_segments_in_the_file_keeping_its_comments() {
    let s = served();
    let file = s.dir.path().join("segmenta.toml");
    let mut text = std::fs::read_to_string(&file).expect("reads");
    text = text.replace("[segments.big]", "# the sales team's favourite\n[segments.big]");
    std::fs::write(&file, &text).expect("writes");

    let body = r#"{"rule": "employees >= 50 and plan = 'free'", "description": "mid-size free accounts"}"#;
    let viewer = send(&s.router, put_json("/v1/segments/free_mid", &s.viewer, body)).await;
    assert_eq!((viewer.status, viewer.code()), (StatusCode::FORBIDDEN, "forbidden".to_string()));
    let created = send(&s.router, put_json("/v1/segments/free_mid", &s.editor, body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let expected =
        segmenta_engine::preview(&s.project(), "employees >= 50 and plan = 'free'", 10).expect("previews");
    assert_eq!(created.json()["preview"]["size"].as_u64(), Some(expected.size));
    let saved = std::fs::read_to_string(&file).expect("reads");
    assert!(saved.contains("# the sales team's favourite"), "comments are kept:\n{saved}");
    assert!(saved.contains("[segments.free_mid]") && saved.contains("mid-size free accounts"), "{saved}");

    // Replacing keeps the other keys; the detail shows the saved rule at once.
    let replaced =
        send(&s.router, put_json("/v1/segments/big", &s.editor, r#"{"rule": "employees >= 500"}"#)).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text());
    let detail = send(&s.router, get("/v1/segments/big", Some(&s.viewer))).await.json();
    assert_eq!(detail["rule"].as_str(), Some("employees >= 500"));
    assert_eq!(detail["description"].as_str(), Some("accounts with 100 or more employees"));
    // An explanation reads the rule as saved (a5 has 125 employees: a member by the run's rule,
    // not by the new one), and says that the two differ.
    let why = send(&s.router, get("/v1/entities/a5/why/big", Some(&s.viewer))).await.json();
    assert_eq!(
        (why["member"].as_bool(), why["tree"]["truth"].as_str()),
        (Some(true), Some("false")),
        "{why}"
    );
    assert!(why["note"].as_str().expect("a note").contains("changed after the run"), "{why}");

    // A rule with a problem: located in the rule, nothing written.
    let before = std::fs::read_to_string(&file).expect("reads");
    let bad = send(&s.router, put_json("/v1/segments/x", &s.editor, r#"{"rule": "employes > 3"}"#)).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_attribute".to_string()));
    assert_eq!((bad.json()["line"].as_u64(), bad.json()["column"].as_u64()), (Some(1), Some(1)));
    let cycle = send(
        &s.router,
        put_json("/v1/segments/pro_buyers", &s.editor, r#"{"rule": "in_segment('pro_buyers')"}"#),
    )
    .await;
    assert_eq!(cycle.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", cycle.text());
    assert_eq!(std::fs::read_to_string(&file).expect("reads"), before, "a refused edit writes nothing");
    // Names the project file would not take are refused, and nothing is written.
    for name in ["a.b", "a%0Ab", "a%09b", ""] {
        let path = format!("/v1/segments/{name}");
        let answer = send(&s.router, put_json(&path, &s.editor, r#"{"rule": "employees > 1"}"#)).await;
        assert!(answer.status.is_client_error(), "{name}: {} {}", answer.status, answer.text());
    }
    assert_eq!(std::fs::read_to_string(&file).expect("reads"), before, "a refused name writes nothing");
    let tier =
        send(&s.router, put_json("/v1/segments/size.mid", &s.editor, r#"{"rule": "employees > 1"}"#)).await;
    assert_eq!((tier.status, tier.code()), (StatusCode::CONFLICT, "not_editable".to_string()));

    // Delete: refused while another segment reads it, done otherwise.
    let reads = send(
        &s.router,
        put_json("/v1/segments/big_pro", &s.editor, r#"{"rule": "in_segment('free_mid') and plan = 'pro'"}"#),
    )
    .await;
    assert_eq!(reads.status, StatusCode::CREATED, "{}", reads.text());
    let refused = send(&s.router, delete("/v1/segments/free_mid", &s.editor)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text());
    assert_eq!(
        send(&s.router, delete("/v1/segments/big_pro", &s.editor)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&s.router, delete("/v1/segments/free_mid", &s.editor)).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = send(&s.router, delete("/v1/segments/free_mid", &s.editor)).await;
    assert_eq!((gone.status, gone.code()), (StatusCode::NOT_FOUND, "unknown_segment".to_string()));
    let after = std::fs::read_to_string(&file).expect("reads");
    assert!(!after.contains("free_mid") && after.contains("# the sales team's favourite"), "{after}");
    segmenta_engine::Project::load(s.dir.path()).expect("the edited file still loads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_requests_load_the_run_once() {
    let s = served();
    let engine = std::sync::Arc::new(segmenta_engine::Engine::new(&Default::default()).expect("an engine"));
    let state = segmenta_server::AppState::new(engine, s.project()).expect("a state");
    let router = segmenta_server::router(state.clone());
    let requests = (0..8).map(|_| {
        let (router, token) = (router.clone(), s.viewer.clone());
        tokio::spawn(async move { send(&router, get("/v1/segments", Some(&token))).await.status })
    });
    for status in futures_util::future::join_all(requests).await {
        assert_eq!(status.expect("the request task"), StatusCode::OK);
    }
    assert_eq!(state.served.runs_loaded(), 1, "one load served every waiting request");
}
