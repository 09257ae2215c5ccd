//! Issue 13: the request log names method, route template, status and latency, and never a
//! token, a body, a query value or an id from the path.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use crate::support::{get, post_json, send, served};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_request_log_has_routes_and_statuses_and_no_personal_data() {
    let s = served();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // tracing caches each call site's interest and a global level across threads; another
    // test registering a call site while this subscriber is being set can leave them off.
    // Rebuilding them once the subscriber is set makes what follows see it.
    tracing::callsite::rebuild_interest_cache();

    assert_eq!(send(&s.router, get("/v1/entities/a12", Some(&s.viewer))).await.status, StatusCode::OK);
    assert_eq!(
        send(&s.router, get("/v1/entities/a999", Some(&s.viewer))).await.status,
        StatusCode::NOT_FOUND
    );
    let cursor = "6131"; // "a1"
    let page =
        send(&s.router, get(&format!("/v1/segments/big/members?limit=2&cursor={cursor}"), Some(&s.viewer)))
            .await;
    assert_eq!(page.status, StatusCode::OK);
    let preview = post_json("/v1/preview", &s.viewer, r#"{"rule": "region = 'secret-region-value'"}"#);
    assert_eq!(send(&s.router, preview).await.status, StatusCode::OK);
    assert_eq!(
        send(&s.router, get("/v1/segments", Some("sgm_not-a-token"))).await.status,
        StatusCode::UNAUTHORIZED
    );

    let log = String::from_utf8(captured.0.lock().expect("the log buffer").clone()).expect("text");
    assert!(log.contains(r#"route="/v1/entities/{id}""#) && log.contains("status=404"), "{log}");
    assert!(log.contains(r#"route="/v1/segments/{name}/members""#) && log.contains("latency_us="), "{log}");
    assert!(log.contains("method=POST") && log.contains(r#"route="/v1/preview""#), "{log}");
    for secret in
        [s.viewer.as_str(), "sgm_not-a-token", "a12", "a999", cursor, "secret-region-value", "limit=2"]
    {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}
