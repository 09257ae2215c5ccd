//! Segment discovery on the demo project (issue #5): outputs, rules that reproduce their reported
//! fidelity when run as segments, determinism, stable ids, and bad features; short thresholds,
//! warnings and `--save` refusing rules that explain nothing (issue 11).

use crate::support::{TempProject, to_json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use segmenta_engine::formats::discovery::DiscoveryWarningCode;
use segmenta_engine::{
    ClusterIds, DemoOptions, DiscoverOptions, DiscoverReport, Error, ErrorCode, ErrorKind, KChoice,
    NoProgress, Project, RunOptions, SaveSegments,
};

const FEATURES: [&str; 4] = ["arr", "logins_30d", "tickets_30d", "plan"];

/// The demo project (600 accounts), written once per test binary.
fn demo_source() -> &'static Path {
    static DEMO: OnceLock<tempfile::TempDir> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let options = DemoOptions { accounts: 600, seed: 42, threads: 2 };
        segmenta_engine::demo(dir.path(), &options, false, &NoProgress).expect("the demo is written");
        dir
    })
    .path()
}

/// A private copy of the demo project (its store and project file are written to).
fn demo_project() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("list a folder") {
            let entry = entry.expect("a folder entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("a file type").is_dir() {
                if entry.file_name() != ".segmenta" {
                    copy(&entry.path(), &target);
                }
            } else {
                std::fs::copy(entry.path(), target).expect("copy a demo file");
            }
        }
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    copy(demo_source(), dir.path());
    dir
}

fn options(features: &[&str], k: KChoice, output: Option<PathBuf>) -> DiscoverOptions {
    let mut options = DiscoverOptions::new(features.iter().map(|f| f.to_string()).collect());
    options.k = k;
    options.output = output;
    options.threads = Some(2);
    options
}

fn discover(dir: &Path, options: &DiscoverOptions) -> segmenta_engine::Result<DiscoverReport> {
    let project = Project::load(dir).expect("the demo project loads");
    segmenta_engine::discover(&project, options, &NoProgress)
}

/// `entity_id → cluster` from `clusters.parquet`.
fn clusters(output: &Path) -> BTreeMap<String, i64> {
    let batch =
        segmenta_store::read_parquet(&output.join("clusters.parquet")).expect("clusters.parquet reads");
    assert_eq!(batch.schema().field(0).name(), "entity_id");
    assert_eq!(batch.schema().field(1).name(), "cluster");
    let ids = batch.column(0).as_string::<i32>();
    let labels = batch.column(1).as_primitive::<Int64Type>();
    assert_eq!(ids.null_count() + labels.null_count(), 0);
    (0..batch.num_rows()).map(|i| (ids.value(i).to_string(), labels.value(i))).collect()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("a JSON file")).expect("valid JSON")
}

#[test]
fn discovered_rules_run_as_segments_with_the_reported_fidelity() {
    let dir = demo_project();
    let mut options = options(&FEATURES, KChoice::Auto { min: 2, max: 6 }, None);
    options.save = Some(SaveSegments { prefix: "found".into(), force: false });
    let report = discover(dir.path(), &options).expect("discovery runs");

    // The default output is a new folder of the store's discoveries.
    assert!(
        report.output.starts_with(dir.path().join(".segmenta/discoveries")),
        "{}",
        report.output.display()
    );
    // The file is the pretty-printed document (compared as text: JSON parsing may round the last
    // bit of a float).
    let text = std::fs::read_to_string(report.output.join("discovery.json")).expect("discovery.json");
    assert_eq!(text, serde_json::to_string_pretty(&to_json(&report.document)).expect("json"));
    let document = read_json(&report.output.join("discovery.json"));
    let k = document["k"].as_u64().expect("k") as i64;
    assert!((2..=6).contains(&k), "k = {k}");
    let at_edge = report.document.warnings.iter().any(|w| w.code == DiscoveryWarningCode::KAtRangeEdge);
    assert_eq!(at_edge, k == 2 || k == 6, "k = {k}: {:?}", report.document.warnings);
    assert_eq!(document["entities"], 600);
    assert_eq!(document["as_of"], "2026-01-01T00:00:00Z", "the project's as_of");
    assert_eq!(document["method"], "kprototypes", "plan is categorical");
    assert_eq!(document["selection"]["table"].as_array().expect("table").len(), 5);
    assert_eq!(document["selection"]["chosen"], k);
    assert!(document["selection"]["explanation"].as_str().expect("text").contains(&format!("k = {k}")));
    let preprocessing = document["preprocessing"].as_array().expect("preprocessing");
    assert_eq!(preprocessing.len(), FEATURES.len());
    assert_eq!(preprocessing[0]["feature"], "arr");
    assert_eq!(preprocessing[0]["log1p"], true, "arr is heavy-tailed: {}", preprocessing[0]["summary"]);
    assert!(document["stability"]["mean"].as_f64().is_some_and(|m| m > 0.0 && m <= 1.0));
    assert!(document["inertia"].as_f64().is_some_and(|i| i > 0.0));

    // One row per entity, every id below k.
    let labels = clusters(&report.output);
    assert_eq!(labels.len(), 600);
    assert!(labels.values().all(|&l| (0..k).contains(&l)));
    let members_of = |id: i64| -> BTreeSet<String> {
        labels.iter().filter(|(_, l)| **l == id).map(|(e, _)| e.clone()).collect()
    };

    // Run the saved rules as segments: sizes and fidelity as reported.
    let project = Project::load(dir.path()).expect("the saved project loads");
    let toml = &project.text;
    assert!(toml.starts_with("# The demo company"), "comments are kept");
    assert!(toml.contains("# Discovered by `segmenta discover` as of 2026-01-01T00:00:00Z"), "{toml}");
    segmenta_engine::validate(&project).expect("the saved segments validate");
    let run_options = RunOptions {
        as_of: None,
        output: None,
        bad_rows: segmenta_engine::BadRows::Strict,
        threads: Some(2),
        ..Default::default()
    };
    segmenta_engine::run(&project, &run_options, &NoProgress).expect("the project runs with them");
    let clusters_json = document["clusters"].as_array().expect("clusters");
    assert_eq!(clusters_json.len() as i64, k);
    assert_eq!(report.saved.len() as i64, k);
    let mut total = 0;
    for cluster in clusters_json {
        let id = cluster["id"].as_i64().expect("id");
        let size = cluster["size"].as_u64().expect("size");
        let in_cluster = members_of(id);
        assert_eq!(in_cluster.len() as u64, size, "cluster {id}");
        total += size;
        let name = cluster["segment"].as_str().expect("a saved segment name");
        assert!(name.starts_with(&format!("found_{id}_")), "{name}");
        let rule = cluster["rule"].as_str().expect("rule");
        assert!(toml.contains(&format!("[segments.{name}]")), "{name} is in the file");
        assert_eq!(project.config.segments[name].rule.as_ref().map(|r| r.get_ref().as_str()), Some(rule));

        let in_segment: BTreeSet<String> =
            segmenta_engine::members(&project, name).expect("members").into_iter().collect();
        let true_positives = in_segment.intersection(&in_cluster).count() as f64;
        let agree = 600.0 - (in_segment.len() as f64 - true_positives) - (size as f64 - true_positives);
        let close = |a: f64, b: &serde_json::Value, what: &str| {
            let b = b.as_f64().expect("a number");
            assert!((a - b).abs() < 1e-9, "cluster {id} ({rule}): {what} {a} from the run, {b} reported");
        };
        assert_eq!(in_segment.len() as u64, cluster["rule_size"].as_u64().expect("rule_size"), "{rule}");
        close(agree / 600.0, &cluster["fidelity"], "fidelity");
        close(true_positives / size as f64, &cluster["recall"], "recall");
        if !in_segment.is_empty() {
            close(true_positives / in_segment.len() as f64, &cluster["precision"], "precision");
            // The size implied by precision and recall.
            let implied = cluster["recall"].as_f64().expect("recall") * size as f64
                / cluster["precision"].as_f64().expect("precision");
            assert_eq!(implied.round() as usize, in_segment.len(), "cluster {id}");
        }
        let persona = &cluster["persona"];
        assert!(!persona["name"].as_str().expect("name").is_empty());
        assert!(persona["description"].as_str().expect("description").contains(&format!("{size} of 600")));
        assert_eq!(cluster["centroid"].as_array().expect("centroid").len(), FEATURES.len());
    }
    assert_eq!(total, 600);

    // Saving again under the same names is refused, and nothing is written.
    let before = std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("read");
    let discoveries = std::fs::read_dir(dir.path().join(".segmenta/discoveries")).expect("list").count();
    let error = discover(dir.path(), &options).expect_err("the names exist");
    assert_eq!((error.code(), error.kind()), ("usage", ErrorKind::User), "{error}");
    assert!(error.to_string().contains("already has segment(s) named `found_0_"), "{error}");
    assert!(error.to_string().contains("hint: pass --prefix"), "{error}");
    assert_eq!(std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("read"), before);
    assert_eq!(
        std::fs::read_dir(dir.path().join(".segmenta/discoveries")).expect("list").count(),
        discoveries
    );
}

#[test]
fn the_same_seed_gives_the_same_discovery_and_ids_stay_stable() {
    let dir = demo_project();
    let out = |name: &str| dir.path().join(name);
    let mut fresh = options(&FEATURES, KChoice::Fixed(4), Some(out("a")));
    fresh.ids = ClusterIds::BySize;
    let a = discover(dir.path(), &fresh).expect("discovery a");
    fresh.output = Some(out("b"));
    let b = discover(dir.path(), &fresh).expect("discovery b");
    let without_time = |mut document: serde_json::Value| {
        document.as_object_mut().expect("an object").remove("elapsed_ms");
        document
    };
    assert_eq!(
        without_time(read_json(&out("a/discovery.json"))),
        without_time(read_json(&out("b/discovery.json")))
    );
    let bytes = |path: PathBuf| std::fs::read(path).expect("a file");
    assert_eq!(bytes(out("a/clusters.parquet")), bytes(out("b/clusters.parquet")));
    assert_eq!(a.previous, None);
    assert_eq!(b.previous, None, "--reset-ids ignores the kept centroids");

    // The kept centroids give the ids: rotate the kept ids, and the next discovery follows them.
    let kept_path = b.centroids_file.clone();
    let mut kept = read_json(&kept_path);
    assert_eq!(kept["format_version"], 1);
    assert_eq!(kept["key"]["features"], serde_json::json!(["arr", "logins_30d", "plan", "tickets_30d"]));
    for centroid in kept["centroids"].as_array_mut().expect("centroids") {
        let id = centroid["id"].as_u64().expect("id");
        centroid["id"] = serde_json::json!((id + 1) % 4);
    }
    std::fs::write(&kept_path, serde_json::to_vec(&kept).expect("json")).expect("write");
    let mut stable = options(&FEATURES, KChoice::Fixed(4), Some(out("c")));
    stable.seed = 1;
    let c = discover(dir.path(), &stable).expect("discovery c");
    let b_folder = out("b").canonicalize().expect("b exists");
    assert_eq!(c.previous.as_deref(), Some(b_folder.display().to_string().as_str()));
    let (labels_b, labels_c) = (clusters(&out("b")), clusters(&out("c")));
    let moved = labels_b.iter().filter(|(id, l)| labels_c[*id] != (**l + 1) % 4).count();
    assert!(moved <= 6, "{moved} of 600 entities left their rotated cluster");
    for cluster in &c.discovery.clusters {
        let before = &b.discovery.clusters[((cluster.id + 3) % 4) as usize];
        assert_eq!(before.id, (cluster.id + 3) % 4);
        assert!(cluster.size.abs_diff(before.size) <= 6, "cluster {} changed size", cluster.id);
    }
    assert!(c.discovery.id_assignment.contains("4 of 4 clusters kept"), "{}", c.discovery.id_assignment);

    // A week earlier the clusters move a little; each keeps the id of the one it mostly was.
    let mut earlier = options(&FEATURES, KChoice::Fixed(4), Some(out("d")));
    earlier.as_of = Some(segmenta_engine::AsOf::parse("2025-12-24").expect("a date"));
    discover(dir.path(), &earlier).expect("discovery d");
    let labels_d = clusters(&out("d"));
    for id in 0..4 {
        let mut overlap = [0usize; 4];
        for (entity, label) in &labels_d {
            if *label == id {
                overlap[labels_c[entity] as usize] += 1;
            }
        }
        let best = (0..4).max_by_key(|&j| overlap[j]).expect("four clusters");
        assert_eq!(best as i64, id, "cluster {id} of d overlaps {overlap:?} with the clusters of c");
    }

    // Another feature set does not reuse these centroids.
    let other = discover(dir.path(), &options(&["arr", "plan"], KChoice::Fixed(3), Some(out("e"))))
        .expect("discovery e");
    assert_eq!(other.previous, None);
    assert!(
        other.discovery.id_assignment.contains("no previous centroids"),
        "{}",
        other.discovery.id_assignment
    );
}

#[test]
fn bad_features_are_user_errors_with_hints() {
    let dir = demo_project();
    let check = |features: &[&str], code: &str, needles: &[&str]| {
        let error: Error = discover(dir.path(), &options(features, KChoice::Fixed(3), None))
            .expect_err("a bad feature is refused");
        assert_eq!((error.code(), error.kind()), (code, ErrorKind::User), "{features:?}: {error}");
        let message = error.to_string();
        for needle in needles {
            assert!(message.contains(needle), "{features:?}: `{needle}` is not in: {message}");
        }
    };
    check(
        &["arr", "logins_3d"],
        "unknown_feature",
        &["unknown feature `logins_3d`", "did you mean `logins_30d`?"],
    );
    check(&["zzz"], "unknown_feature", &["features are the attributes", "account_id"]);
    check(&["arr", "uses_sso"], "unsupported_feature", &["`uses_sso` is bool", "[schemes.uses_sso_text]"]);
    check(&["signup_date"], "unsupported_feature", &["is date", "days_since_first()"]);
    check(&["arr", "`arr`"], "duplicate_feature", &["`arr` is given twice"]);
    check(&[" "], "no_features", &["--features"]);
    let mut too_many = options(&["arr"], KChoice::Fixed(601), None);
    too_many.threads = Some(1);
    let error = discover(dir.path(), &too_many).expect_err("more clusters than entities");
    assert_eq!((error.code(), error.kind()), ("too_few_entities", ErrorKind::User), "{error}");
    assert!(error.to_string().contains("--k"), "{error}");
    // Nothing was kept or written by the failures.
    assert!(!dir.path().join(".segmenta/centroids").exists());
    assert!(!dir.path().join(".segmenta/discoveries").exists());
}

#[test]
fn parent_columns_are_features_of_contacts() {
    let dir = demo_project();
    let toml = format!(
        "{}[traits]\n{}",
        crate::support::DEMO_CONTACTS_HEAD,
        r#"contact_logins_90d = { entity = "contact", expr = "count() where event_type = 'login' within 90d" }
"#
    );
    std::fs::write(dir.path().join("segmenta.toml"), toml).expect("write the project file");
    let mut options = options(&["contact_logins_90d", "PARENT.arr", "parent.plan"], KChoice::Fixed(3), None);
    options.save = Some(SaveSegments { prefix: "c".into(), force: false });
    let report = discover(dir.path(), &options).expect("discovery on contacts");
    let document = to_json(&report.document);
    let features: Vec<&str> = document["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(features, ["contact_logins_90d", "parent.arr", "parent.plan"]);
    assert_eq!(to_json(&report.document)["features"][2]["source"], "parent_attribute");
    let project = Project::load(dir.path()).expect("loads");
    let run_options = RunOptions {
        as_of: None,
        output: None,
        bad_rows: segmenta_engine::BadRows::Strict,
        threads: Some(2),
        ..Default::default()
    };
    let run = segmenta_engine::run(&project, &run_options, &NoProgress).expect("the saved rules run");
    let entities = report.entities as u64;
    assert_eq!(to_json(&run.summary)["entities"].as_u64(), Some(entities));
    for cluster in to_json(&report.document)["clusters"].as_array().expect("clusters") {
        let name = cluster["segment"].as_str().expect("saved");
        let size = run.segments.iter().find(|s| s.name == name).map(|s| s.size);
        assert_eq!(size, cluster["rule_size"].as_u64(), "{name}: {}", cluster["rule"]);
    }
    assert!(
        report.discovery.clusters.iter().any(|c| c.rule.contains("parent.")),
        "some rule reads the parent: {:?}",
        report.discovery.clusters.iter().map(|c| &c.rule).collect::<Vec<_>>()
    );
}

#[test]
fn auto_k_at_the_edge_of_the_range_warns() {
    let dir = demo_project();
    let report = discover(dir.path(), &options(&FEATURES, KChoice::Auto { min: 3, max: 4 }, None))
        .expect("discovery runs");
    let k = report.discovery.k;
    let warning = &report.document.warnings[0];
    assert_eq!((warning.code, warning.cluster), (DiscoveryWarningCode::KAtRangeEdge, None));
    let edge = if k == 3 { "smallest" } else { "largest" };
    assert_eq!(warning.message, format!("automatic k chose k = {k}, the {edge} k tried (3 to 4)"));
    assert!(warning.hint.contains("--k"), "{}", warning.hint);
    // discovery.json holds them too.
    let document = read_json(&report.output.join("discovery.json"));
    assert_eq!(document["warnings"][0]["code"], "k_at_range_edge");
    assert!(document["warnings"][0].get("cluster").is_none(), "{}", document["warnings"]);
}

#[test]
fn save_refuses_a_rule_that_is_true_without_force() {
    let dir = demo_project();
    let before = std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("read");
    // One cluster: its rule is `true`, it explains nothing.
    let mut options = options(&FEATURES, KChoice::Fixed(1), None);
    options.save = Some(SaveSegments { prefix: "all".into(), force: false });
    let error = discover(dir.path(), &options).expect_err("the rule is `true`");
    assert_eq!((error.code(), error.kind()), ("usage", ErrorKind::User), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(
            "not saving the clusters as segments: the rule of cluster 0 (`true`) matches every entity"
        ),
        "{message}"
    );
    assert!(message.contains("hint: pass --force"), "{message}");
    assert_eq!(std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("read"), before);
    assert!(!dir.path().join(".segmenta/discoveries").exists(), "nothing is written");

    options.save = Some(SaveSegments { prefix: "all".into(), force: true });
    let report = discover(dir.path(), &options).expect("forced");
    assert_eq!(report.saved.len(), 1);
    assert_eq!(report.saved[0].rule, "true");
    let warning = &report.document.warnings[0];
    assert_eq!((warning.code, warning.cluster), (DiscoveryWarningCode::RuleMatchesAll, Some(0)));
    let project = Project::load(dir.path()).expect("loads");
    assert_eq!(
        project.config.segments[&report.saved[0].name].rule.as_ref().map(|r| r.get_ref().as_str()),
        Some("true")
    );
    let document = read_json(&report.output.join("discovery.json"));
    assert_eq!(document["warnings"][0]["code"], "rule_matches_all");
    assert_eq!(document["warnings"][0]["cluster"], 0);
    assert_eq!(document["clusters"][0]["rule_size"], 600);
}

#[test]
fn thresholds_print_as_the_shortest_decimal_between_neighbours() {
    // Totals summed from prices: 12.99 + 48.81 is 61.800000000000004 in binary, the next total
    // up is 61.870000000000005. The rules, discovery.json and the saved segment say 61.84.
    let toml = r#"[project]
name = "totals"
entity = "account"
as_of = "2024-06-30"

[entities.account]
source = "accounts.csv"
key = "account_id"
columns = { total = "float" }
"#;
    let totals =
        ["61.7", "61.72", "61.76", "61.800000000000004", "61.870000000000005", "61.9", "61.93", "61.95"];
    let mut accounts = String::from("account_id,total\n");
    for (i, total) in totals.iter().flat_map(|t| [t; 3]).enumerate() {
        accounts.push_str(&format!("A{i:02},{total}\n"));
    }
    let project = TempProject::new(&[("segmenta.toml", toml), ("accounts.csv", &accounts)]);
    let mut options = options(&["total"], KChoice::Fixed(2), None);
    options.save = Some(SaveSegments { prefix: "t".into(), force: false });
    let report = discover(project.path(), &options).expect("discovery runs");
    let rules: Vec<&str> = report.discovery.clusters.iter().map(|c| c.rule.as_str()).collect();
    assert_eq!(rules, ["total <= 61.84", "total > 61.84"]);
    let text = std::fs::read_to_string(report.output.join("discovery.json")).expect("discovery.json");
    assert!(text.contains(r#""rule": "total > 61.84""#), "{text}");
    let toml = std::fs::read_to_string(project.path().join("segmenta.toml")).expect("read");
    assert!(toml.contains(r#"rule = "total > 61.84""#), "{toml}");
    // The rules split the data as the clusters do.
    for cluster in &report.discovery.clusters {
        assert_eq!((cluster.fidelity, cluster.rule_size), (1.0, 12), "{}", cluster.rule);
    }
    let loaded = project.load().expect("the saved project loads");
    let run_options = RunOptions { threads: Some(2), ..Default::default() };
    segmenta_engine::run(&loaded, &run_options, &NoProgress).expect("the saved rules run");
    for saved in &report.saved {
        let members = segmenta_engine::members(&loaded, &saved.name).expect("members");
        assert_eq!(members.len(), 12, "{}", saved.rule);
    }
}
