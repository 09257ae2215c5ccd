//! What a plan reads, as validation found it: each entity's file, schema, key and links, the
//! events' file, schema and key columns, and what kind each segment is. Plain types below both
//! the plan and the planner.

use segmenta_core::ValueType;
use segmenta_query::ParentLink;
use segmenta_query::ingest::{SourceSpec, TableSchema};
use segmenta_store::formats::SegmentKind;

/// An entity a run reads.
#[derive(Debug, Clone)]
pub struct PlannedEntity {
    /// Its name.
    pub name: String,
    /// Where it comes from.
    pub spec: SourceSpec,
    /// Its schema.
    pub schema: TableSchema,
    /// Its key column.
    pub key: String,
    /// Its parent entity.
    pub parent: Option<ParentLink>,
    /// The column holding the parent row's key in its hierarchy.
    pub hierarchy: Option<String>,
    /// Its rows are the distinct keys of the events (`spec` is the events' file).
    pub from_events: bool,
    /// Lookup tables joined to its rows (their columns are in `schema`, after the file's own).
    pub lookups: Vec<PlannedLookup>,
}

/// A lookup table of an entity.
#[derive(Debug, Clone)]
pub struct PlannedLookup {
    /// Its name (`[lookups.NAME]`).
    pub name: String,
    /// Where it comes from.
    pub spec: SourceSpec,
    /// Its key column.
    pub key: String,
    /// The entity's column joined to the key.
    pub on: String,
    /// The columns it adds to the entity, in file order.
    pub columns: Vec<(String, ValueType)>,
}

/// The events side of a validated project.
#[derive(Debug, Clone)]
pub struct PlannedEvents {
    /// Where they come from.
    pub spec: SourceSpec,
    /// Their schema (time column forced to timestamp).
    pub schema: TableSchema,
    /// The entity they belong to.
    pub entity: String,
    /// The column holding that entity's key.
    pub key: String,
    /// The time column.
    pub time: String,
}

/// What kind of segment a name is, its macro segment and its description.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    /// Rule, static, scheme tier, RFM or a model's segment.
    pub kind: SegmentKind,
    /// The macro segment of a micro segment.
    pub parent: Option<String>,
    /// What it is for.
    pub description: Option<String>,
}
