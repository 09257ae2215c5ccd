//! Building small projects in temporary folders and running them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use segmenta_engine::{AsOf, BadRows, NoProgress, Project, RunOptions, RunReport};

/// A typed report or document as JSON, for assertions on its keys.
pub fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).expect("reports serialize")
}

/// A project in a temporary folder.
pub struct TempProject {
    pub dir: tempfile::TempDir,
}

impl TempProject {
    /// Writes `files` (relative path, contents) into a new folder.
    pub fn new(files: &[(&str, &str)]) -> TempProject {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for (path, contents) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().expect("files have a parent")).expect("mkdir");
            std::fs::write(full, contents).expect("write a project file");
        }
        TempProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn load(&self) -> segmenta_engine::Result<Project> {
        Project::load(self.path())
    }

    /// Runs with `as_of` into `DIR/out`.
    pub fn run(&self, as_of: &str, bad_rows: BadRows) -> segmenta_engine::Result<RunReport> {
        let project = self.load()?;
        let options = RunOptions {
            as_of: Some(AsOf::parse(as_of)?),
            output: Some(self.out()),
            bad_rows,
            threads: Some(2),
            ..RunOptions::default()
        };
        segmenta_engine::run(&project, &options, &NoProgress)
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }
}

/// Members per segment of a finished run, ids sorted.
pub fn memberships(project: &TempProject) -> BTreeMap<String, Vec<String>> {
    let loaded = project.load().expect("project loads");
    let mut out = BTreeMap::new();
    for name in &loaded.config.segment_names() {
        let mut members = segmenta_engine::members(&loaded, name).expect("members");
        members.sort();
        out.insert(name.clone(), members);
    }
    out
}

/// The head of a project file over the demo's data files with contacts as the customers
/// (accounts are their parent); tests append their `[traits]` and segments.
pub const DEMO_CONTACTS_HEAD: &str = r#"[project]
name = "contacts"
entity = "contact"
as_of = "2025-12-31"
[entities.account]
source = "data/accounts.parquet"
key = "account_id"
[entities.contact]
source = "data/contacts.parquet"
key = "contact_id"
parent = "account"
[events]
source = "data/events.parquet"
entity_key = "account_id"
time = "ts"
"#;

/// Trait definitions over events with columns `type` (`visit`, `order`, `ticket`), `amount`
/// (float) and `qty` (int): every aggregate, with and without windows and filters; `calendar`
/// adds a window between two dates of 2025 and a product of columns.
pub fn event_traits(calendar: bool) -> impl proptest::strategy::Strategy<Value = Vec<String>> {
    use proptest::prelude::*;
    let mut aggregates = vec![
        "count()",
        "count(amount)",
        "sum(amount)",
        "sum(qty)",
        "avg(amount)",
        "min(amount)",
        "max(qty)",
        "count_distinct(type)",
        "count_distinct(qty)",
        "first_seen()",
        "last_seen()",
        "days_since_last()",
        "days_since_first()",
        "median(amount)",
        "share(type = 'order')",
    ];
    let mut windows = vec!["", " within 7d", " within 30d", " within 90d", " within 2w", " within 1mo"];
    if calendar {
        aggregates.push("sum(amount * qty)");
        windows.push(" between 2025-02-01 and 2025-03-15");
    }
    let aggregate = prop::sample::select(aggregates);
    let filter = prop::sample::select(vec!["", " where type = 'order'", " where qty > 2"]);
    let window = prop::sample::select(windows);
    prop::collection::vec((aggregate, filter, window), 1..6).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(a, f, w)| {
                // `share` takes its condition as its argument: no extra filter.
                let f = if a.starts_with("share") { "" } else { f };
                format!("{a}{f}{w}")
            })
            .collect()
    })
}
