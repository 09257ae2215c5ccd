//! Segmentation models end to end on small hand-checked data: RFM scores against a table
//! computed by hand, the run summary of static lists and micro segments.

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use segmenta_engine::BadRows;

use crate::support::{TempProject, to_json};

/// Per account: days since the last purchase, purchases, total amount, and the hand-computed
/// R, F, M scores and segment. Scores: with n = 10 buyers, a value's score is
/// 1 + floor(5 * w / 10), w = the number of buyers with a strictly worse value.
const RFM_TABLE: &[(&str, i64, i64, i64, &str, &str)] = &[
    // id, recency, frequency, monetary, "RFM", segment
    ("B01", 1, 1, 50, "511", "New Customers"),
    ("B02", 3, 12, 2000, "555", "Champions"),
    ("B03", 5, 8, 800, "444", "Loyal"),
    ("B04", 10, 2, 120, "423", "Potential Loyalist"),
    ("B05", 20, 5, 400, "333", "Need Attention"),
    ("B06", 40, 9, 1500, "344", "Loyal"),
    ("B07", 80, 3, 90, "232", "At Risk"),
    ("B08", 150, 10, 1800, "255", "Can't Lose Them"),
    ("B09", 200, 1, 20, "111", "Lost"),
    ("B10", 300, 2, 60, "122", "Lost"),
];

const RFM_TOML: &str = r#"[project]
name = "rfm"
entity = "account"
[entities.account]
source = "accounts.csv"
key = "account_id"
[events]
source = "events.csv"
entity_key = "account_id"
time = "ts"
columns = { amount = "int" }
[rfm]
purchase = "event_type = 'purchase'"
amount = "amount"
within = "365d"
[segments.best]
rule = "rfm_score >= 500 and in_segment('rfm.champions')"
"#;

/// The instant `days` days and one hour before the as-of instant (2024-07-01T00:00:00Z), so
/// that `days_since_last` is exactly `days`.
fn days_ago(days: i64) -> String {
    let as_of = chrono::DateTime::parse_from_rfc3339("2024-07-01T00:00:00Z").expect("valid instant");
    let t = as_of - chrono::Duration::days(days) - chrono::Duration::hours(1);
    t.to_rfc3339()
}

#[test]
fn rfm_scores_match_a_hand_computed_table() {
    let mut accounts = String::from("account_id\n");
    let mut events = String::from("account_id,ts,event_type,amount\n");
    for (id, recency, frequency, monetary, _, _) in RFM_TABLE {
        accounts.push_str(&format!("{id}\n"));
        // The last purchase carries the whole amount; earlier ones are a day apart and free.
        events.push_str(&format!("{id},{},purchase,{monetary}\n", days_ago(*recency)));
        for k in 1..*frequency {
            events.push_str(&format!("{id},{},purchase,0\n", days_ago(recency + k)));
        }
        // Events that are not purchases never count.
        events.push_str(&format!("{id},{},login,999\n", days_ago(0)));
    }
    // Outside the 365-day window: does not count for B09.
    events.push_str(&format!("B09,{},purchase,5000\n", days_ago(400)));
    // No purchase at all, and one only after the as-of date.
    accounts.push_str("N11\nN12\n");
    events.push_str(&format!("N11,{},login,\n", days_ago(3)));
    events.push_str("N12,2024-07-02T00:00:00Z,purchase,70\n");

    let project = TempProject::new(&[
        ("segmenta.toml", RFM_TOML),
        ("accounts.csv", &accounts),
        ("events.csv", &events),
    ]);
    project.run("2024-06-30", BadRows::Strict).expect("the run succeeds");
    let traits = segmenta_store::read_parquet(&project.out().join("traits.parquet")).expect("traits");
    let column =
        |name: &str| traits.column_by_name(name).unwrap_or_else(|| panic!("no column {name}")).clone();
    let ids = column("entity_id");
    let ids = ids.as_string::<i32>();
    let int = |name: &str| column(name).as_primitive::<Int64Type>().clone();
    let (recency, frequency, monetary) = (int("rfm_recency_days"), int("rfm_frequency"), int("rfm_monetary"));
    let (r, f, m, score) = (int("rfm_r"), int("rfm_f"), int("rfm_m"), int("rfm_score"));
    let segment = column("rfm_segment");
    let segment = segment.as_string::<i32>();
    for row in 0..traits.num_rows() {
        let id = ids.value(row);
        match RFM_TABLE.iter().find(|t| t.0 == id) {
            Some((_, rec, freq, money, rfm, name)) => {
                assert_eq!(
                    (recency.value(row), frequency.value(row), monetary.value(row)),
                    (*rec, *freq, *money),
                    "{id}"
                );
                let digits: Vec<i64> =
                    rfm.chars().map(|c| i64::from(c.to_digit(10).expect("a digit"))).collect();
                assert_eq!(vec![r.value(row), f.value(row), m.value(row)], digits, "{id}");
                assert_eq!(score.value(row).to_string(), *rfm, "{id}");
                assert_eq!(segment.value(row), *name, "{id}");
            }
            None => {
                assert!(recency.is_null(row) && r.is_null(row) && score.is_null(row), "{id}");
                assert_eq!((frequency.value(row), monetary.value(row)), (0, 0), "{id}");
                assert_eq!(segment.value(row), "No Purchases", "{id}");
            }
        }
    }
    assert_eq!(traits.num_rows(), 12);
    let members = |segment: &str| {
        let loaded = project.load().expect("loads");
        let mut members = segmenta_engine::members(&loaded, segment).expect("members");
        members.sort();
        members
    };
    assert_eq!(members("rfm.lost"), ["B09", "B10"]);
    assert_eq!(members("rfm.no_purchases"), ["N11", "N12"]);
    assert_eq!(members("rfm.cant_lose_them"), ["B08"]);
    assert_eq!(members("best"), ["B02"]);
}

#[test]
fn summary_reports_static_lists_and_micro_segments() {
    let toml = r#"[project]
name = "s"
entity = "account"
[entities.account]
source = "accounts.csv"
key = "account_id"
[segments.vip]
static = "lists/vip.csv"
description = "hand-picked"
[segments.big]
rule = "employees >= 100"
[segments.big_health]
parent = "big"
rule = "industry = 'health'"
"#;
    let project = TempProject::new(&[
        ("segmenta.toml", toml),
        (
            "accounts.csv",
            "account_id,industry,employees\nA1,health,500\nA2,health,20\nA3,retail,300\nA4,health,100\n",
        ),
        ("lists/vip.csv", "entity_id\nA2\nX9\nA1\nX1\n"),
    ]);
    let report = project.run("2024-06-30", BadRows::Strict).expect("run");
    let lists = &to_json(&report.summary)["static_lists"];
    assert_eq!(lists[0]["ids"], 4);
    assert_eq!(lists[0]["members"], 2);
    assert_eq!(lists[0]["unknown_ids"], 2);
    assert_eq!(lists[0]["unknown_sample"], serde_json::json!(["X1", "X9"]));
    let segment = |name: &str| {
        to_json(&report.summary)["segments"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no segment {name}"))
    };
    assert_eq!(segment("vip")["kind"], "static");
    assert_eq!(segment("big_health")["size"], 2);
    assert_eq!(segment("big_health")["parent"], "big");
    assert!((segment("big_health")["share_of_parent"].as_f64().expect("a share") - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(report.static_lists[0].unknown, 2);
}

#[test]
fn preview_sizes_equal_the_same_rules_as_segments() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let options = segmenta_engine::DemoOptions { accounts: 500, seed: 5, threads: 2 };
    segmenta_engine::demo(dir.path(), &options, false, &segmenta_engine::NoProgress).expect("demo");
    let project = segmenta_engine::Project::load(dir.path()).expect("loads");
    let run_options = segmenta_engine::RunOptions {
        as_of: None,
        output: None,
        bad_rows: BadRows::Strict,
        threads: Some(2),
        ..Default::default()
    };
    let run = segmenta_engine::run(&project, &run_options, &segmenta_engine::NoProgress).expect("runs");
    let size_of =
        |name: &str| run.segments.iter().find(|s| s.name == name).map(|s| s.size).expect("a segment");
    // Every segment's rule, previewed as an ad-hoc rule, has the segment's size.
    for (name, segment) in &project.config.segments {
        let Some(rule) = &segment.rule else { continue };
        let rule = match &segment.parent {
            Some(parent) => format!("in_segment('{parent}') and ({})", rule.get_ref()),
            None => rule.get_ref().clone(),
        };
        let preview = segmenta_engine::preview(&project, &rule, 3).expect("a preview");
        assert_eq!(preview.size, size_of(name), "{name}: {rule}");
        assert_eq!(preview.entities, 500);
        // The sample is the first members by id.
        let mut members = segmenta_engine::members(&project, name).expect("members");
        members.sort();
        members.truncate(3);
        assert_eq!(preview.sample, members, "{name}");
    }
    let preview = segmenta_engine::preview(&project, "in_segment('lifecycle.at_risk') or rfm_r = 5", 0)
        .expect("schemes, RFM and segments are previewable");
    assert!(preview.size > 0);
    let error = segmenta_engine::preview(&project, "arr >", 0).expect_err("a bad rule");
    assert!(error.to_string().contains("position"), "{error}");
}
