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

/// One HTTP/1.1 request on loopback; the status and body of the answer.
fn request(address: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connects to the server");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n")
        .expect("writes");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("reads the answer");
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
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

    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_segmenta"))
            .args(["serve", "--project", project, "--listen", "127.0.0.1:0", "--json", "--threads", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts"),
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout")).read_line(&mut first).expect("a line");
    let ready: serde_json::Value = serde_json::from_str(&first).expect("the listening line is JSON");
    let address = ready["listening"].as_str().expect("an address").to_string();
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
