//! `summary.json`, a run's summary (format version 1): the rows read and used per entity and
//! events file, the traits computed, every segment's size, the static lists' matches, and with
//! `[clv]` and `[churn]` the models' summaries.

use serde::{Deserialize, Serialize};

use super::clv_params::ClvParams;
use super::{Document, FormatVersion};

/// A run's `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Always the current version, 1.
    pub format_version: FormatVersion<1>,
    /// The project's display name.
    pub project: String,
    /// The entity segments hold.
    pub entity: String,
    /// The instant evaluated (RFC 3339).
    pub as_of: String,
    /// Entities evaluated.
    pub entities: u64,
    /// The project entity's file.
    pub entity_rows: EntityRows,
    /// The other entities' files (parents, children), in load order.
    pub related_entity_rows: Vec<EntityRows>,
    /// The events file (`null` without `[events]`).
    pub events: Option<EventsSummary>,
    /// The traits written, in output order.
    pub traits: Vec<String>,
    /// Every segment, in output order.
    pub segments: Vec<SegmentSummary>,
    /// The static lists, in request order.
    pub static_lists: Vec<StaticListSummary>,
    /// Input rows set aside as rejects.
    pub rejected_rows: u64,
    /// The rejects file in the run folder (`rejects.csv`); `null` when none were set aside.
    pub rejects_file: Option<String>,
    /// Threads used.
    pub threads: u64,
    /// Wall time of the evaluation.
    pub elapsed_ms: u64,
    /// With `[clv]`: the same document as the run's `clv_params.json`. The key is absent
    /// without `[clv]` (not `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clv: Option<ClvParams>,
    /// With `[churn]`: the model's headline figures. The key is absent without `[churn]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnSummary>,
    /// What the run warned about (keys that match no entity, ...). The key is absent when
    /// there was nothing to warn about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// Something a run found suspicious but did not refuse (with `--strict` it is an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// A stable snake_case code (`unknown_event_keys`, `unknown_parent_keys`,
    /// `unknown_hierarchy_parents`).
    pub code: String,
    /// What, with counts and a few example keys.
    pub message: String,
    /// What to check or change.
    pub hint: String,
}

impl Document for RunSummary {
    const FILE: &'static str = crate::files::SUMMARY;
    const VERSION: u32 = 1;
}

/// The rows of one entity file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRows {
    /// The entity.
    pub entity: String,
    /// The file as shown to users (relative to the project).
    pub file: String,
    /// Rows read.
    pub read: u64,
    /// Rows kept (after rejects and key checks).
    pub used: u64,
    /// Rows set aside.
    pub rejected: u64,
}

/// The accounting of the events file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsSummary {
    /// The file as shown to users.
    pub file: String,
    /// The entity events belong to.
    pub entity: String,
    /// Rows read (the file's and the posted ones).
    pub read: u64,
    /// Of the rows read, those posted to a server (the store's event log); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub posted: u64,
    /// Events of known entities strictly before the as-of instant.
    pub used: u64,
    /// The three `ignored_*` counts together.
    pub ignored: u64,
    /// Events whose key matches no entity.
    pub ignored_unknown_entity: u64,
    /// Events at or after the as-of instant.
    pub ignored_after_as_of: u64,
    /// Events without a time.
    pub ignored_no_time: u64,
    /// Rows set aside as rejects.
    pub rejected: u64,
}

/// What kind of segment a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// A `[segments]` rule.
    Rule,
    /// A `[segments]` static list.
    Static,
    /// A scheme's tier (`scheme.tier`).
    Scheme,
    /// An RFM segment (`rfm.champions`).
    Rfm,
    /// The CLV diamonds in the rough.
    Clv,
    /// A `[movements]` segment: the entities that moved since the previous snapshot.
    Movement,
}

/// One segment's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentSummary {
    /// The segment.
    pub name: String,
    /// Its kind.
    pub kind: SegmentKind,
    /// Members.
    pub size: u64,
    /// Members over entities (0 without entities).
    pub share: f64,
    /// The macro segment of a micro segment (`null` otherwise).
    pub parent: Option<String>,
    /// Members over the parent's members (`null` without a parent; 0 for an empty parent).
    pub share_of_parent: Option<f64>,
    /// What it is for (`null` when nothing says).
    pub description: Option<String>,
}

/// What a static list matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticListSummary {
    /// The segment.
    pub name: String,
    /// The list's file as shown to users (`null` if the plan lost it, which does not happen).
    pub file: Option<String>,
    /// Distinct ids in the list.
    pub ids: u64,
    /// Members (ids that are entities).
    pub members: u64,
    /// Ids that are not entities.
    pub unknown_ids: u64,
    /// Up to ten of them, sorted.
    pub unknown_sample: Vec<String>,
}

/// The churn model's headline figures in a run's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnSummary {
    /// The model's file in the run folder (`churn_model.json`).
    pub model_file: String,
    /// Holdout ROC AUC.
    pub auc: f64,
    /// Holdout rows.
    pub holdout_rows: u64,
    /// Training rows.
    pub train_rows: u64,
    /// Entities scored (active at the as-of instant).
    pub scored: u64,
    /// Entities not scored.
    pub not_scored: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> RunSummary {
        RunSummary {
            format_version: FormatVersion,
            project: "p".into(),
            entity: "account".into(),
            as_of: "2025-01-01T00:00:00+00:00".into(),
            entities: 2,
            entity_rows: EntityRows {
                entity: "account".into(),
                file: "a.csv".into(),
                read: 2,
                used: 2,
                rejected: 0,
            },
            related_entity_rows: Vec::new(),
            events: None,
            traits: Vec::new(),
            segments: vec![SegmentSummary {
                name: "big".into(),
                kind: SegmentKind::Rule,
                size: 1,
                share: 0.5,
                parent: None,
                share_of_parent: None,
                description: None,
            }],
            static_lists: Vec::new(),
            rejected_rows: 0,
            rejects_file: None,
            threads: 1,
            elapsed_ms: 3,
            clv: None,
            churn: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn missing_values_are_null_but_missing_models_are_absent() {
        let value = serde_json::to_value(summary()).expect("serializes");
        assert!(value["events"].is_null() && value["rejects_file"].is_null());
        assert!(value["segments"][0]["parent"].is_null());
        assert_eq!(value["segments"][0]["kind"], "rule");
        let object = value.as_object().expect("an object");
        assert!(object.contains_key("events") && object.contains_key("rejects_file"));
        assert!(!object.contains_key("clv") && !object.contains_key("churn"));
        assert!(!object.contains_key("warnings"), "no warnings, no key (version 1 files stay as they were)");
        let back: RunSummary = serde_json::from_value(value).expect("reads");
        assert_eq!(back, summary());
    }
}
