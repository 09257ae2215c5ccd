//! Issue 11: `segmenta members` with chosen columns, in natural order, in CSV, JSON Lines and
//! Parquet, and the errors a newcomer meets (a column that is not there, a segment added after
//! the latest run).

use crate::cli::{quickstart, segmenta, text};

fn ran_quickstart() -> tempfile::TempDir {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["run", "--project", project, "--as-of", "2024-06-30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

#[test]
fn members_with_columns_print_csv_with_a_header_in_natural_order() {
    let dir = ran_quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let plain = segmenta(&["members", "paying", "--project", project]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let ids: Vec<String> = text(&plain.stdout).lines().map(String::from).collect();
    assert!(ids.len() > 3, "{ids:?}");
    let out = segmenta(&["members", "paying", "--project", project, "--with", "plan,logins_30d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("entity_id,plan,logins_30d"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let csv_ids: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(csv_ids, ids, "the same members in the same order");
    for row in &rows {
        assert!(["starter", "pro", "enterprise"].contains(&row[1]), "a paying plan: {row:?}");
        assert!(row[2].parse::<u64>().is_ok(), "a count: {row:?}");
    }
}

#[test]
fn members_as_json_lines_and_parquet_keep_types() {
    let dir = ran_quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&[
        "members",
        "paying",
        "--project",
        project,
        "--with",
        "employees,is_customer",
        "--format",
        "jsonl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for line in text(&out.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        assert!(row["entity_id"].is_string(), "{row}");
        assert!(row["employees"].is_i64() || row["employees"].is_null(), "{row}");
        assert_eq!(row["is_customer"], true, "{row}");
    }
    let parquet = dir.path().join("paying.parquet");
    let out = segmenta(&[
        "members",
        "paying",
        "--project",
        project,
        "--with",
        "plan",
        "--format",
        "parquet",
        "--output",
        parquet.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&parquet).expect("the file");
    assert_eq!(&bytes[..4], b"PAR1", "a Parquet file");
    let out = segmenta(&["members", "paying", "--project", project, "--format", "parquet"]);
    assert_eq!(out.status.code(), Some(2), "parquet needs --output: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--output"), "{}", text(&out.stderr));
}

#[test]
fn members_with_a_column_that_is_not_there_lists_the_columns() {
    let dir = ran_quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["members", "paying", "--project", project, "--with", "plann"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`plann` is not a column of the latest run"), "{stderr}");
    assert!(stderr.contains("did you mean `plan`?"), "{stderr}");
}

#[test]
fn members_of_a_segment_added_after_the_latest_run_says_so() {
    let dir = ran_quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let toml = dir.path().join("segmenta.toml");
    let mut text_of = std::fs::read_to_string(&toml).expect("read");
    text_of.push_str("\n[segments.brand_new]\nrule = \"employees > 1\"\n");
    std::fs::write(&toml, text_of).expect("write");
    let out = segmenta(&["members", "brand_new", "--project", project]);
    assert_eq!(out.status.code(), Some(2), "not an empty list with exit 0");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("segment `brand_new` is not in the run as of"), "{stderr}");
    assert!(stderr.contains("segmenta run"), "{stderr}");
}
