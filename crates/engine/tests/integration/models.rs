//! Segmentation models end to end on small hand-checked data: RFM scores against a table
//! computed by hand, fixed RFM cut points and repeat-day frequency, the run summary of static
//! lists and micro segments.

use std::collections::BTreeMap;

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

/// One account's RFM as a run computed it.
#[derive(Debug, Clone, PartialEq)]
struct Rfm {
    frequency: i64,
    scores: Option<(i64, i64, i64)>,
    segment: String,
}

/// Runs RFM as of 2024-06-30 over accounts given as (id, days since the last purchase,
/// purchases a day apart, total amount carried by the last one), with `rfm_extra` appended to
/// `[rfm]` (no window), and returns each account's values.
fn rfm_run(accounts: &[(&str, i64, i64, i64)], rfm_extra: &str) -> BTreeMap<String, Rfm> {
    let mut ids = String::from("account_id\n");
    let mut events = String::from("account_id,ts,event_type,amount\n");
    for (id, recency, frequency, monetary) in accounts {
        ids.push_str(&format!("{id}\n"));
        events.push_str(&format!("{id},{},purchase,{monetary}\n", days_ago(*recency)));
        for k in 1..*frequency {
            events.push_str(&format!("{id},{},purchase,0\n", days_ago(recency + k)));
        }
    }
    let toml = RFM_TOML.replace("within = \"365d\"\n", rfm_extra);
    let project =
        TempProject::new(&[("segmenta.toml", &toml), ("accounts.csv", &ids), ("events.csv", &events)]);
    project.run("2024-06-30", BadRows::Strict).expect("the run succeeds");
    let traits = segmenta_store::read_parquet(&project.out().join("traits.parquet")).expect("traits");
    let column = |name: &str| traits.column_by_name(name).unwrap_or_else(|| panic!("no {name}")).clone();
    let int = |name: &str| column(name).as_primitive::<Int64Type>().clone();
    let (ids, segment) = (column("entity_id"), column("rfm_segment"));
    let (frequency, r, f, m) = (int("rfm_frequency"), int("rfm_r"), int("rfm_f"), int("rfm_m"));
    (0..traits.num_rows())
        .map(|row| {
            let scores = (!r.is_null(row)).then(|| (r.value(row), f.value(row), m.value(row)));
            let rfm = Rfm {
                frequency: frequency.value(row),
                scores,
                segment: segment.as_string::<i32>().value(row).to_string(),
            };
            (ids.as_string::<i32>().value(row).to_string(), rfm)
        })
        .collect()
}

const THRESHOLDS: &str = "[rfm.thresholds]
recency_days = [30, 90, 180, 365]
frequency = [1, 2, 4, 8]
monetary = [100, 500, 1000, 5000]
";

// Issue #11: a value equal to a cut point falls in the band the cut point closes (the cut
// points are inclusive upper ends), on every dimension.
#[test]
fn issue_11_rfm_thresholds_score_values_equal_to_a_cut_point_in_the_band_it_closes() {
    let accounts = [
        // id, recency, frequency, monetary: expected (R, F, M)
        ("T030", 30, 1, 100),   // 5 1 1
        ("T031", 31, 2, 101),   // 4 2 2
        ("T090", 90, 4, 500),   // 4 3 2
        ("T181", 181, 5, 1000), // 2 4 3
        ("T365", 365, 8, 5000), // 2 4 4
        ("T366", 366, 9, 5001), // 1 5 5
    ];
    let expected = [(5, 1, 1), (4, 2, 2), (4, 3, 2), (2, 4, 3), (2, 4, 4), (1, 5, 5)];
    let run = rfm_run(&accounts, THRESHOLDS);
    for ((id, ..), scores) in accounts.iter().zip(expected) {
        assert_eq!(run[*id].scores, Some(scores), "{id}");
    }
    assert_eq!(run["T366"].segment, "Can't Lose Them");
    // The same accounts with quintiles: scores follow the ranks instead.
    let run = rfm_run(&accounts, "");
    assert_eq!(run["T366"].scores, Some((1, 5, 5)));
    assert_eq!(run["T030"].scores, Some((5, 1, 1)));
    assert_eq!(run["T181"].scores, Some((2, 3, 3)));
}

// Issue #11: on one cohort that stopped buying over a year ago, quintiles still make the best
// of them champions; fixed recency cut points put every one of them at R = 1.
#[test]
fn issue_11_one_cohort_quintiles_call_a_long_lapsed_customer_a_champion_and_thresholds_do_not() {
    let accounts: Vec<(String, i64, i64, i64)> =
        (0..10).map(|i| (format!("C{i:02}"), 400 + 30 * (9 - i), 1 + i, 100 * (1 + i))).collect();
    let accounts: Vec<(&str, i64, i64, i64)> =
        accounts.iter().map(|(id, r, f, m)| (id.as_str(), *r, *f, *m)).collect();
    let quintiles = rfm_run(&accounts, "");
    // C09 last bought 400 days ago, yet ranks first on every axis.
    assert_eq!(quintiles["C09"].scores, Some((5, 5, 5)));
    assert_eq!(quintiles["C09"].segment, "Champions");
    assert_eq!(quintiles["C08"].segment, "Champions");
    // Only recency gets cut points: F and M stay quintiles.
    let thresholds = rfm_run(&accounts, "[rfm.thresholds]\nrecency_days = [30, 90, 180, 365]\n");
    assert_eq!(thresholds["C09"].scores, Some((1, 5, 5)));
    assert_eq!(thresholds["C09"].segment, "Can't Lose Them");
    assert!(thresholds.values().all(|rfm| rfm.scores.is_some_and(|s| s.0 == 1)), "{thresholds:?}");
    assert!(thresholds.values().all(|rfm| rfm.segment != "Champions"));
}

// Issue #11: `frequency = "repeat_days"` counts purchase days after the first, as clv_frequency
// does: same-day purchases count once, and a one-time buyer (0) is still scored.
#[test]
fn issue_11_rfm_frequency_repeat_days_counts_purchase_days_after_the_first() {
    // A: three purchase days, with two purchases on the last; B: one purchase; C: two on one day.
    let mut events = String::from("account_id,ts,event_type,amount\n");
    for (id, days) in [("A", &[3, 3, 10, 20][..]), ("B", &[5][..]), ("C", &[7, 7][..])] {
        for day in days {
            events.push_str(&format!("{id},{},purchase,10\n", days_ago(*day)));
        }
    }
    let run = |extra: &str| {
        let toml = RFM_TOML.replace("within = \"365d\"\n", extra);
        let project = TempProject::new(&[
            ("segmenta.toml", &toml),
            ("accounts.csv", "account_id\nA\nB\nC\nN\n"),
            ("events.csv", &events),
        ]);
        project.run("2024-06-30", BadRows::Strict).expect("runs");
        let traits = segmenta_store::read_parquet(&project.out().join("traits.parquet")).expect("traits");
        let frequency = traits.column_by_name("rfm_frequency").expect("rfm_frequency");
        let scored = traits.column_by_name("rfm_f").expect("rfm_f");
        let frequency: Vec<i64> =
            frequency.as_primitive::<Int64Type>().iter().map(|v| v.expect("0 without")).collect();
        (frequency, (0..4).map(|row| scored.is_valid(row)).collect::<Vec<bool>>())
    };
    assert_eq!(run(""), (vec![4, 1, 2, 0], vec![true, true, true, false]));
    assert_eq!(run("frequency = \"purchases\"\n"), (vec![4, 1, 2, 0], vec![true, true, true, false]));
    assert_eq!(run("frequency = \"repeat_days\"\n"), (vec![2, 0, 0, 0], vec![true, true, true, false]));
    // A window counts the repeat days within it: A's days 3 and 10 (5 days ago is B's).
    assert_eq!(
        run("frequency = \"repeat_days\"\nwithin = \"15d\"\n"),
        (vec![1, 0, 0, 0], vec![true, true, true, false])
    );
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
