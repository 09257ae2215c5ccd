//! Every persisted format version keeps a fixture under `test-data/<format>/v<N>.json`, written
//! by the binary of that version on the demo project. Each must still load with its typed
//! reader, serialize back to exactly the same JSON (so a renamed, retyped or dropped key fails
//! here), and be refused with a clear error once its `format_version` is changed.

use std::path::{Path, PathBuf};

use segmenta_store::formats::{Document, KSetting, SegmentKind};
use segmenta_store::{
    ChurnModel, ClvHoldout, ClvParams, DiscoveryReport, Error, RunSummary, StoredCentroids, read_churn_model,
    read_clv_holdout, read_clv_params, read_discovery, read_run_summary,
};

fn fixture(format: &str, version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data")
        .join(format)
        .join(format!("v{version}.json"))
}

/// Loads `test-data/<format>/v<VERSION>.json` with `read` (from a folder holding it under its
/// real file name), checks that serializing gives the same JSON and that `write` gives the same
/// bytes, then that version 99 of it is refused.
fn check<T: Document + std::fmt::Debug>(
    format: &str,
    read: fn(&Path) -> segmenta_store::Result<T>,
    write: fn(&T) -> String,
) -> T {
    let path = fixture(format, T::VERSION);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expected: serde_json::Value = serde_json::from_str(&text).expect("the fixture is JSON");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(T::FILE), &text).expect("write");
    let typed = read(dir.path()).unwrap_or_else(|e| panic!("{format} v{}: {e}", T::VERSION));
    let back = serde_json::to_value(&typed).expect("serializes");
    assert_eq!(
        back,
        expected,
        "{format} v{}: the typed document does not write the fixture back",
        T::VERSION
    );

    // Written as segmenta writes it, the typed document is the fixture byte for byte: same keys
    // in the same order, same numbers.
    assert_eq!(write(&typed), text, "{format} v{}: the file written is not the fixture", T::VERSION);

    let mut future = expected.clone();
    future["format_version"] = serde_json::json!(99);
    std::fs::write(dir.path().join(T::FILE), serde_json::to_vec_pretty(&future).expect("JSON"))
        .expect("write");
    let error = read(dir.path()).expect_err("version 99 is unknown");
    match &error {
        Error::FormatVersion { path, found: Some(99), supported } => {
            assert_eq!(path, &dir.path().join(T::FILE));
            assert_eq!(*supported, T::VERSION);
        }
        other => panic!("{format}: expected a format version error, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(T::FILE), "{message}");
    assert!(
        message.ends_with(&format!(
            "format_version 99 is not supported (this version of segmenta reads {})",
            T::VERSION
        )),
        "{message}"
    );
    typed
}

/// The file `write_run` writes for a document.
fn written<T: Document>(document: &T) -> String {
    let (name, output) = document.output().expect("an output file");
    assert_eq!(name, T::FILE);
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    segmenta_store::write_run(&run, &[(name, output)]).expect("written");
    std::fs::read_to_string(run.join(T::FILE)).expect("read")
}

#[test]
fn summary_v1() {
    let summary: RunSummary = check("summary", read_run_summary, written);
    assert!(summary.clv.is_some() && summary.churn.is_some(), "the fixture covers both models");
    assert!(summary.segments.iter().any(|s| s.parent.is_some()), "and a micro segment");
    for kind in
        [SegmentKind::Rule, SegmentKind::Static, SegmentKind::Scheme, SegmentKind::Rfm, SegmentKind::Clv]
    {
        assert!(summary.segments.iter().any(|s| s.kind == kind), "and a {kind:?} segment");
    }
}

#[test]
fn clv_params_v1() {
    let params: ClvParams = check("clv_params", read_clv_params, written);
    assert!(params.bg_nbd.converged && params.gamma_gamma.converged);
}

// Issue #11: `holdout.json` of `segmenta clv --holdout 26w` on the 1,000-account demo.
#[test]
fn clv_holdout_v1() {
    let holdout: ClvHoldout = check("clv_holdout", read_clv_holdout, written);
    assert!(holdout.customers > 0 && !holdout.by_frequency.is_empty());
    assert_eq!(holdout.calibration.as_of, holdout.calibration_end);
}

#[test]
fn churn_model_v1() {
    let model: ChurnModel = check("churn_model", read_churn_model, written);
    assert!(!model.features.is_empty() && !model.holdout.calibration.is_empty());
    // Issue #11: files written before churn by inactivity and the holdout warning read as a
    // churn-event model without warnings (and keep their bytes, as `check` asserts).
    assert!(model.inactive.is_none() && model.activity.is_none() && model.warnings.is_empty());
}

#[test]
fn discovery_v1() {
    let report: DiscoveryReport = check("discovery", read_discovery, written);
    assert!(matches!(report.options.k, KSetting::Auto { .. }));
    assert!(!report.clusters.is_empty());
}

#[test]
fn centroids_v1() {
    let stored: StoredCentroids = check(
        "centroids",
        |dir| {
            let path = dir.join(StoredCentroids::FILE);
            let bytes = std::fs::read(&path).expect("read");
            segmenta_store::from_json(&path, &bytes)
        },
        |stored| {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = segmenta_store::Store::new(dir.path()).write_centroids(stored).expect("written");
            std::fs::read_to_string(path).expect("read")
        },
    );
    assert!(!stored.centroids.is_empty());

    // The store finds the fixture under its key.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = segmenta_store::Store::new(dir.path());
    store.write_centroids(&stored).expect("written");
    assert_eq!(store.read_centroids(&stored.key).expect("read"), Some(stored));
}
