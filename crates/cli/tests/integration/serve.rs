//! Issue 13, end to end: `segmenta token create` prints a token once, `segmenta serve` answers
//! on a loopback port with it, refuses it once `segmenta token revoke` ran, and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn segmenta(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_segmenta")).args(args).output().expect("the binary runs")
}

/// One HTTP/1.1 GET on loopback; the status and body of the answer.
fn request(address: &str, path: &str, token: Option<&str>) -> (u16, String) {
    send(address, "GET", path, token, None).expect("an answer")
}

/// One HTTP/1.1 request on loopback with an optional JSON body; the status and body of the
/// answer, or the I/O error (a server killed mid-request).
fn send(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let content = body
        .map(|b| format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}{content}Connection: close\r\n\r\n{}",
        body.unwrap_or_default()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// A copy of the quick-start example in a temporary folder.
fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a folder");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    for file in ["segmenta.toml", "data/accounts.csv", "data/events.csv"] {
        std::fs::copy(source.join(file), dir.path().join(file)).expect("copy example");
    }
    dir
}

/// Kills the server if the test fails before it stops it.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_answers_with_a_created_token_and_refuses_it_once_revoked() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("a utf-8 path");
    assert!(segmenta(&["run", "--project", project, "--threads", "1"]).status.success());
    let created = segmenta(&["token", "create", "--project", project, "--role", "viewer", "--name", "e2e"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8(created.stdout).expect("text").trim().to_string();
    assert!(token.starts_with("sgm_") && token.len() == 68, "{token}");
    let listed = segmenta(&["token", "list", "--project", project]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&token), "the list shows no secret");

    let mut server = start_server(project, Stdio::piped());
    let address = listening(&mut server);
    assert!(address.starts_with("127.0.0.1:"), "{address}");

    let (status, body) = request(&address, "/health", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(request(&address, "/v1/segments", None).0, 401);
    let (status, body) = request(&address, "/v1/segments", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"segments\""), "{body}");

    assert!(segmenta(&["token", "revoke", "e2e", "--project", project]).status.success());
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(request(&address, "/v1/segments", Some(&token)).0, 401, "revoked while serving");

    let terminated =
        Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().expect("kill runs");
    assert!(terminated.success());
    let status = server.0.wait().expect("the server stops");
    assert!(status.success(), "SIGTERM stops the server cleanly: {status:?}");
    let mut log = String::new();
    server.0.stderr.take().expect("stderr").read_to_string(&mut log).expect("the log");
    assert!(log.contains("route=\"/v1/segments\"") && log.contains("status=401"), "{log}");
    assert!(!log.contains(&token), "no token in the log");
}

#[test]
fn explain_prints_the_tree_with_references_expanded_and_refuses_unknown_ids() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("a utf-8 path");
    assert!(
        segmenta(&["run", "--project", project, "--threads", "1", "--as-of", "2025-01-01"]).status.success()
    );
    let out = segmenta(&["explain", "A002", "at_risk", "--project", project, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let why: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(why["segment"].as_str(), Some("at_risk"));
    let first = &why["tree"]["children"][0];
    assert_eq!(first["text"].as_str(), Some("in_segment('paying')"));
    assert_eq!(first["segment"]["segment"].as_str(), Some("paying"), "in_segment is explained in turn");
    assert_eq!(first["segment"]["member"].as_bool(), first["truth"].as_str().map(|t| t == "true"));

    let text = segmenta(&["explain", "A002", "--project", project]);
    let text = String::from_utf8(text.stdout).expect("text");
    assert!(text.contains("A002 is not in `smb`") || text.contains("A002 is in `smb`"), "{text}");

    let unknown = segmenta(&["explain", "NOPE", "smb", "--project", project]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no entity `NOPE`"));
}

/// Reads the server's first stdout line (`{"listening": ADDRESS}`).
fn listening(server: &mut Server) -> String {
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout")).read_line(&mut first).expect("a line");
    let ready: serde_json::Value = serde_json::from_str(&first).expect("the listening line is JSON");
    ready["listening"].as_str().expect("an address").to_string()
}

/// `segmenta serve` on a free loopback port (with `extra` arguments); its log (standard error)
/// goes to `log`.
fn start_server_with(project: &str, log: Stdio, extra: &[&str]) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_segmenta"))
            .args(["serve", "--project", project, "--listen", "127.0.0.1:0", "--json", "--threads", "1"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the server starts"),
    )
}

/// `segmenta serve` whose memberships follow posted events only from the next run.
fn start_server(project: &str, log: Stdio) -> Server {
    start_server_with(project, log, &["--no-live"])
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A quick-start account that is not `active` (fewer than five logins in the last 30 days),
/// with its entity as the server answers it.
fn inactive_account(address: &str, token: &str) -> (String, serde_json::Value) {
    (1..=40)
        .map(|n| format!("A{n:03}"))
        .find_map(|id| {
            let (status, body) = request(address, &format!("/v1/entities/{id}"), Some(token));
            let entity = json(&body);
            let active = entity["segments"].as_array().is_some_and(|s| s.iter().any(|s| s == "active"));
            (status == 200 && !active).then_some((id, entity))
        })
        .expect("an account that is not active")
}

/// A `POST /v1/events` body: six logins of `id` in the last 30 days before 2024-06-30.
fn six_logins(id: &str) -> String {
    let events: Vec<String> = (20..26)
        .map(|day| {
            format!(r#"{{"account_id": "{id}", "ts": "2024-06-{day}T09:00:00Z", "event_type": "login"}}"#)
        })
        .collect();
    format!(r#"{{"events": [{}]}}"#, events.join(","))
}

/// Issue 13's end-to-end test of `POST /v1/events`: events posted to the binary are kept
/// through `kill -9` (every acknowledged one, none torn), and a run started over HTTP after a
/// restart reads them: the account's traits and segments change.
#[test]
fn posted_events_survive_kill_9_and_the_next_run_reads_them() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("a utf-8 path");
    let run = segmenta(&["run", "--project", project, "--threads", "1", "--as-of", "2024-06-30"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let created = segmenta(&["token", "create", "--project", project, "--role", "editor", "--name", "feed"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8(created.stdout).expect("text").trim().to_string();

    let mut server = start_server(project, Stdio::null());
    let address = listening(&mut server);
    let (id, before) = inactive_account(&address, &token);
    let logins = before["values"]["logins_30d"].as_i64().unwrap_or(0);
    let batch = six_logins(&id);
    let (status, body) = send(&address, "POST", "/v1/events", Some(&token), Some(&batch)).expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert_eq!((json(&body)["accepted"].as_u64(), json(&body)["rejected"].as_u64()), (Some(6), Some(0)));

    // Batches of 50 probes (an event type no trait reads) posted one after another until the
    // server is killed: every acknowledged one must be on disk.
    let acknowledged = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let feeder = {
        let (address, token, acknowledged) = (address.clone(), token.clone(), acknowledged.clone());
        let probe = r#"{"account_id": "A001", "ts": "2024-06-29T10:00:00Z", "event_type": "probe"}"#;
        let batch = format!(r#"{{"events": [{}]}}"#, vec![probe; 50].join(","));
        std::thread::spawn(move || {
            for _ in 0..2_000 {
                match send(&address, "POST", "/v1/events", Some(&token), Some(&batch)) {
                    Ok((200, _)) => acknowledged.fetch_add(50, std::sync::atomic::Ordering::SeqCst),
                    _ => return,
                };
            }
        })
    };
    let waited = std::time::Instant::now();
    while acknowledged.load(std::sync::atomic::Ordering::SeqCst) < 500 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the feeder is stuck");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.0.kill().expect("kill -9");
    server.0.wait().expect("the server is gone");
    feeder.join().expect("the feeder stops");
    let acknowledged = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
    let log =
        std::fs::read_to_string(dir.path().join(".segmenta").join("events/ingested.jsonl")).expect("the log");
    let complete = log.split_inclusive('\n').filter(|l| l.ends_with('\n')).count() as u64;
    // The six logins, every acknowledged probe, and at most the one batch in flight.
    assert!(
        complete >= 6 + acknowledged && complete <= 6 + acknowledged + 50,
        "{complete} lines, {acknowledged} acknowledged"
    );

    // A restarted server runs over the file and the log; the account became active.
    let mut server = start_server(project, Stdio::null());
    let address = listening(&mut server);
    let (status, body) = send(&address, "POST", "/v1/runs", Some(&token), Some(r#"{"as_of": "2024-06-30"}"#))
        .expect("an answer");
    assert_eq!(status, 202, "{body}");
    let run_id = json(&body)["id"].as_u64().expect("a run id");
    let waited = std::time::Instant::now();
    loop {
        let (_, body) = request(&address, &format!("/v1/runs/{run_id}"), Some(&token));
        let state = json(&body)["state"].as_str().unwrap_or_default().to_string();
        if state != "running" {
            assert_eq!(state, "succeeded", "{body}");
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(120), "the run is still running");
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = loop {
        let (_, body) = request(&address, &format!("/v1/entities/{id}"), Some(&token));
        let entity = json(&body);
        if entity["values"]["logins_30d"].as_i64() != Some(logins) {
            break entity;
        }
        assert!(waited.elapsed() < Duration::from_secs(130), "still {entity}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(after["values"]["logins_30d"].as_i64(), Some(logins + 6), "{after}");
    assert!(after["segments"].as_array().expect("segments").iter().any(|s| s == "active"), "{after}");
    drop(server);

    // The CLI's runs read the log too, and say how many rows came from it.
    let rerun = segmenta(&["run", "--project", project, "--threads", "1", "--as-of", "2024-06-30"]);
    let text = String::from_utf8_lossy(&rerun.stdout);
    assert!(text.contains(&format!("of which {complete} posted to a server")), "{text}");
}

/// Issue 13's end-to-end test of memberships that follow events: logins posted to the binary
/// move an account into `active` with no run (no snapshot is written), and the change is
/// listed by `GET /v1/changes`.
#[test]
fn posted_events_move_memberships_without_a_run() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("a utf-8 path");
    let run = segmenta(&["run", "--project", project, "--threads", "1", "--as-of", "2024-06-30"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let created = segmenta(&["token", "create", "--project", project, "--role", "editor", "--name", "feed"]);
    let token = String::from_utf8(created.stdout).expect("text").trim().to_string();
    let mut server = start_server_with(project, Stdio::null(), &[]);
    let address = listening(&mut server);
    let (id, before) = inactive_account(&address, &token);
    let logins = before["values"]["logins_30d"].as_i64().unwrap_or(0);
    let batch = six_logins(&id);
    let (status, body) = send(&address, "POST", "/v1/events", Some(&token), Some(&batch)).expect("an answer");
    assert_eq!(status, 200, "{body}");

    let waited = std::time::Instant::now();
    let after = loop {
        let (_, body) = request(&address, &format!("/v1/entities/{id}"), Some(&token));
        let entity = json(&body);
        if entity["segments"].as_array().is_some_and(|s| s.iter().any(|s| s == "active")) {
            break entity;
        }
        assert!(waited.elapsed() < Duration::from_secs(60), "still {entity}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(after["values"]["logins_30d"].as_i64(), Some(logins + 6), "{after}");
    assert_eq!(after["as_of"], before["as_of"], "the same instant, no new run");
    let (status, body) = request(&address, "/v1/changes?segment=active", Some(&token));
    assert_eq!(status, 200, "{body}");
    let changes = json(&body);
    let entered = changes["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| c["entity_id"] == id.as_str() && c["change"] == "entered" && c["segment"] == "active");
    assert!(entered, "{changes}");
    assert_eq!(changes["live"]["through"], changes["live"]["events_posted"], "{changes}");
    assert_eq!(changes["live"]["events_posted"].as_u64(), Some(6), "{changes}");
    // No run was started or written: one snapshot, the CLI's.
    let (_, body) = request(&address, "/v1/runs", Some(&token));
    assert_eq!(json(&body)["runs"].as_array().map(Vec::len), Some(0), "{body}");
    drop(server);
    let listed = segmenta(&["snapshots", "--project", project, "--json"]);
    let snapshots = json(&String::from_utf8_lossy(&listed.stdout));
    assert_eq!(snapshots["snapshots"].as_array().map(Vec::len), Some(1), "{snapshots}");
    // The CLI lists the same changes; an unknown segment is refused with a suggestion.
    let listed = segmenta(&["changes", "active", "--project", project, "--json"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let from_cli = json(&String::from_utf8_lossy(&listed.stdout));
    assert_eq!(from_cli["changes"], changes["changes"], "{from_cli}");
    let unknown = segmenta(&["changes", "activ", "--project", project]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("active"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

#[test]
fn serve_refuses_a_bad_refresh_duration_before_listening() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("a utf-8 path");
    for bad in ["soon", "0s", "500ms"] {
        let out = segmenta(&["serve", "--project", project, "--listen", "127.0.0.1:0", "--refresh", bad]);
        assert_eq!(out.status.code(), Some(2), "--refresh {bad}");
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(
            message.contains("--refresh") && (message.contains("30s") || message.contains("1s")),
            "{message}"
        );
    }
}
