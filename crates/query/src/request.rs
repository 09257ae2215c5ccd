//! What an evaluation is asked and what it answers: the entity tables and events it reads,
//! the per-entity aggregates (traits, score points, purchase-day facts) and where they come
//! from, the derived columns (scores, schemes, segments), the model columns added by table
//! extensions, and the output (traits, memberships, the evaluation table, event accounting).
//! These plain types sit below both the evaluation pipeline ([`mod@crate::evaluate`]) and the
//! one-pass scan, which read them and do not know each other's internals.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use segmenta_core::{Cancel, ValueType};
use segmenta_rules::ast::{TypedExpr, TypedTrait};

use crate::ingest::TableSchema;
use crate::{Error, ExtensionError, Result};

/// Stops with [`Error::Cancelled`] when `cancel` was cancelled (the evaluation's stages and the
/// scan's units check it).
pub(crate) fn check_cancelled(cancel: &Cancel) -> Result<()> {
    if cancel.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
}

/// The output column holding entity ids.
pub const ENTITY_ID: &str = "entity_id";

/// An in-memory table in canonical types.
#[derive(Debug, Clone)]
pub struct Table {
    /// Columns and types.
    pub schema: TableSchema,
    /// Rows.
    pub batches: Vec<RecordBatch>,
}

/// Where the events come from.
#[derive(Debug, Clone)]
pub enum EventsInput {
    /// Already loaded (CSV, JSON Lines).
    Table(Table),
    /// A Parquet file scanned by DataFusion, reading only the columns the traits need.
    /// `schema` holds the canonical types the columns are cast to.
    Parquet {
        /// The file.
        path: PathBuf,
        /// Canonical types of the file's columns (after overrides).
        schema: TableSchema,
        /// Rows read after the file's (the events posted to a server), in the same types.
        appended: Vec<RecordBatch>,
    },
}

impl EventsInput {
    /// The canonical schema of the events.
    pub fn schema(&self) -> &TableSchema {
        match self {
            EventsInput::Table(table) => &table.schema,
            EventsInput::Parquet { schema, .. } => schema,
        }
    }
}

/// The event stream and its key columns.
#[derive(Debug, Clone)]
pub struct EventsRequest {
    /// Rows.
    pub input: EventsInput,
    /// The entity the events belong to (the summary's accounting is about it).
    pub entity: String,
    /// Column carrying that entity's key.
    pub key: String,
    /// Event time column.
    pub time: String,
}

/// An entity's link to its parent entity.
#[derive(Debug, Clone)]
pub struct ParentLink {
    /// The parent entity.
    pub entity: String,
    /// The column of this entity's rows that holds the parent's key.
    pub column: String,
}

/// The rows of one entity.
#[derive(Debug, Clone)]
pub struct EntityData {
    /// The entity's name.
    pub name: String,
    /// Its data file as the user named it (for messages).
    pub source: String,
    /// Its rows (keys are unique and present).
    pub table: Table,
    /// Its key column.
    pub key: String,
    /// Its parent entity, if any.
    pub parent: Option<ParentLink>,
    /// A column holding the key of the parent row in the same table, if any.
    pub hierarchy: Option<String>,
}

/// What a trait aggregates over.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitSource {
    /// The entity's events.
    Events,
    /// The rows of a child entity (their attributes and traits), grouped by their parent key.
    Rollup {
        /// The child entity.
        child: String,
    },
    /// The rows of the entity's children (or all descendants) in its hierarchy.
    Hierarchy {
        /// All descendants rather than direct children.
        descendants: bool,
    },
    /// Computed from the entity's attributes and other traits (a derived trait), after all of
    /// its other traits and after the derived traits it reads.
    Derived,
}

/// A per-entity aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum Aggregate {
    /// A trait of the trait language (boxed: it is much larger than the other kinds).
    Trait(Box<TypedTrait>),
    /// Points per matching event (a line of an engagement score).
    Points(PointsSpec),
    /// A fact about the UTC calendar days with a matching event (CLV summaries).
    Days(DaysSpec),
    /// A value computed per entity from its columns (a derived trait).
    Value(segmenta_rules::ast::TypedValue),
}

/// Facts about purchase days: the UTC calendar days on which an entity has an event matching
/// `condition` (before the as-of instant), for the CLV summary of Fader, Hardie & Lee.
#[derive(Debug, Clone, PartialEq)]
pub struct DaysSpec {
    /// What makes an event a purchase.
    pub condition: Option<TypedExpr>,
    /// The amount column (for [`DayPart::Total`] and [`DayPart::FirstDayTotal`]); NULL amounts
    /// count as 0.
    pub amount: Option<segmenta_rules::ast::ColumnInfo>,
    /// Which fact.
    pub part: DayPart,
    /// Only purchases within this window before the as-of instant count; default: all.
    pub within: Option<segmenta_core::Within>,
}

/// One fact about purchase days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayPart {
    /// The number of distinct days (int, 0 without purchases).
    Distinct,
    /// The first day, as days since 1970-01-01 (int, NULL without purchases).
    First,
    /// The last day (int, NULL without purchases).
    Last,
    /// The total amount (float, 0 without purchases).
    Total,
    /// The total amount on the first day (float, NULL without purchases).
    FirstDayTotal,
    /// The number of distinct days minus one, the repeat purchase days (int, 0 with one
    /// purchase day or none).
    RepeatDays,
}

/// Columns computed from the entity table after the traits and RFM (stage 2) by code outside
/// this crate: predictive models. Implementations live in segmenta-engine.
pub trait TableExtension: std::fmt::Debug + Send + Sync {
    /// The columns to add, each aligned with the rows of `table` (which holds
    /// `__segmenta_entity_id`, the attributes, the traits, internal aggregates and RFM values).
    fn columns(&self, table: &RecordBatch) -> std::result::Result<Vec<(String, ArrayRef)>, ExtensionError>;

    /// The columns [`TableExtension::columns`] reads and those it adds, by name, when the
    /// extension declares them. An evaluation of some rows only (`crate::evaluate_rows`) takes
    /// a row's added values from the evaluation before when none of the columns read changed
    /// for any of its rows; `None` always needs every row.
    fn names(&self) -> Option<(Vec<String>, Vec<String>)> {
        None
    }

    /// The columns of some rows only (`table` holds them), when each row's values depend on
    /// that row alone (a model scoring rows with parameters fitted before); `None` when they
    /// depend on every row (a fit over all of them).
    fn row_columns(
        &self,
        _table: &RecordBatch,
    ) -> Option<std::result::Result<Vec<(String, ArrayRef)>, ExtensionError>> {
        None
    }
}

/// A per-entity aggregate and where it goes.
#[derive(Debug, Clone)]
pub struct TraitSpec {
    /// The column it becomes in the entity's table.
    pub name: String,
    /// The entity it belongs to.
    pub entity: String,
    /// What it aggregates over.
    pub source: TraitSource,
    /// The aggregate.
    pub aggregate: Aggregate,
}

/// The columns (traits) holding the raw RFM values and how each is scored; the scores are
/// added after them as `rfm_r`, `rfm_f`, `rfm_m`, `rfm_score` and `rfm_segment`.
#[derive(Debug, Clone)]
pub struct RfmColumns {
    /// Whole days since the last purchase (NULL without one): an entity is scored when it is
    /// present.
    pub recency: String,
    /// Purchases, or repeat purchase days.
    pub frequency: String,
    /// Total amount of the purchases.
    pub monetary: String,
    /// How recency is scored.
    pub recency_scoring: segmenta_core::rfm::Scoring,
    /// How frequency is scored.
    pub frequency_scoring: segmenta_core::rfm::Scoring,
    /// How the amount is scored.
    pub monetary_scoring: segmenta_core::rfm::Scoring,
}

/// A column computed from the entity table after traits, in dependency order.
#[derive(Debug, Clone)]
pub enum Derived {
    /// A rule segment; with a parent (macro) segment, members must also be in the parent.
    Segment {
        /// The segment.
        name: String,
        /// Its rule.
        rule: TypedExpr,
        /// Its macro segment.
        parent: Option<String>,
    },
    /// A static list of ids.
    Static {
        /// The segment.
        name: String,
        /// Its member ids.
        ids: Vec<String>,
    },
    /// A scheme: a string column holding the first tier whose rule is TRUE, else `otherwise`.
    Scheme {
        /// The scheme (and column) name.
        name: String,
        /// Tiers in priority order.
        tiers: Vec<(String, TypedExpr)>,
        /// The tier of entities no rule matches.
        otherwise: String,
    },
    /// A segment of the entities whose string `column` equals `value` (scheme tiers, RFM
    /// segments).
    Equals {
        /// The segment.
        name: String,
        /// The string column.
        column: String,
        /// The value.
        value: String,
    },
    /// A movement: the entities that were members of `from` at the previous snapshot (and not
    /// of `to`) and are members of `to` now; with only `to`, those that entered it; with only
    /// `from`, those that left it. Without a previous snapshot (`previous` is `None`), nobody.
    Movement {
        /// The segment.
        name: String,
        /// The segment they were in.
        from: Option<String>,
        /// The segment they are in now.
        to: Option<String>,
        /// The previous snapshot's members of `from` and of `to` (filled in per evaluation).
        previous: Option<PreviousMembers>,
    },
    /// A points score: rule points plus capped event points, clamped to `[min, max]`.
    Score {
        /// The score (and column) name.
        name: String,
        /// Points for entities whose rule is TRUE.
        rules: Vec<(TypedExpr, f64)>,
        /// Columns holding event points (from stage 1), each with its cap.
        events: Vec<(String, Option<f64>)>,
        /// Lower bound.
        min: Option<f64>,
        /// Upper bound.
        max: Option<f64>,
    },
}

/// What a movement reads of the previous snapshot.
#[derive(Debug, Clone, Default)]
pub struct PreviousMembers {
    /// The members of `from` then.
    pub from: Vec<String>,
    /// The members of `to` then.
    pub to: Vec<String>,
}

/// Everything one evaluation needs.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    /// Every entity the evaluation reads.
    pub entities: Vec<EntityData>,
    /// The entity that segments hold.
    pub entity: String,
    /// Columns of the parent entity's table (attributes and traits) that rules read, and the
    /// names they take in the evaluation table.
    pub parent_columns: Vec<(String, String)>,
    /// Events, if any.
    pub events: Option<EventsRequest>,
    /// Per-entity aggregates, each entity's in the order they are computed.
    pub traits: Vec<TraitSpec>,
    /// RFM, when `[rfm]` is declared.
    pub rfm: Option<RfmColumns>,
    /// Derived columns, each after those it reads.
    pub derived: Vec<Derived>,
    /// Columns of `traits.parquet` after `entity_id`, with their types.
    pub outputs: Vec<(String, ValueType)>,
    /// Segments in output order.
    pub segments: Vec<String>,
    /// The as-of instant, microseconds since the epoch, UTC.
    pub as_of: i64,
    /// Worker threads (DataFusion target partitions).
    pub threads: usize,
    /// Model columns added after the traits and RFM, before scores, schemes and segments.
    pub extensions: Vec<Arc<dyn TableExtension>>,
    /// Asks the evaluation to stop between stages and between units of the event scan.
    pub cancel: Cancel,
    /// The worker threads of the event scan (the caller's pool, built once); `None` builds a
    /// pool of `threads` threads for this evaluation.
    pub pool: Option<Arc<rayon::ThreadPool>>,
    /// The events already scanned for this request's instant ([`crate::evaluate::scan_events`]);
    /// `None` scans them.
    pub scanned: Option<Arc<ScannedEvents>>,
}

impl EvalRequest {
    /// The loaded rows of entity `name`.
    pub(crate) fn entity_data(&self, name: &str) -> Result<&EntityData> {
        self.entities
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| Error::Internal(format!("entity `{name}` was not loaded")))
    }
}

/// How the events were used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventCounts {
    /// Rows read from the events source (after rejects).
    pub read: u64,
    /// Events of known entities strictly before the as-of instant.
    pub used: u64,
    /// Events whose key matches no entity.
    pub ignored_unknown_entity: u64,
    /// Events at or after the as-of instant.
    pub ignored_after_as_of: u64,
    /// Events without a time.
    pub ignored_no_time: u64,
    /// Events without a key (NULL or empty), neither used nor ignored: the caller rejects them
    /// ([`EventKeys::missing_key_rows`]).
    pub rejected_no_key: u64,
}

/// What the events' keys looked like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventKeys {
    /// Up to five distinct keys, the smallest, of events before the as-of instant that match
    /// no entity.
    pub unknown_sample: Vec<String>,
    /// 1-based row numbers (of the events as read) of the events without a key, in order.
    pub missing_key_rows: Vec<u64>,
}

/// What a static list matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticListReport {
    /// The segment.
    pub name: String,
    /// Distinct ids in the list.
    pub ids: u64,
    /// Ids that are not entities.
    pub unknown: u64,
    /// Up to ten of them, sorted.
    pub unknown_sample: Vec<String>,
}

/// The result of an evaluation.
#[derive(Debug, Clone)]
pub struct EvalOutput {
    /// `entity_id` (Utf8) and one column per output, sorted by `entity_id`.
    pub traits: RecordBatch,
    /// `entity_id` (Utf8), `segment` (Utf8): one row per membership, by segment then id.
    pub memberships: RecordBatch,
    /// Members per segment, in request order.
    pub segment_sizes: Vec<(String, u64)>,
    /// Number of entities.
    pub entities: u64,
    /// Event accounting.
    pub events: EventCounts,
    /// Events without a key and examples of unknown keys.
    pub event_keys: EventKeys,
    /// Static lists, in request order.
    pub static_lists: Vec<StaticListReport>,
    /// The evaluation table, for previews of ad-hoc rules: `entity_id`, every column rules read
    /// (attributes, traits, parent columns, RFM values, scores, schemes) and one boolean column
    /// per segment named by [`segmenta_core::hidden::segment_flag`], sorted by `entity_id`.
    pub table: RecordBatch,
    /// Every column the evaluation computed, internal ones too (`__segmenta_entity_id`, model
    /// inputs, segment flags), sorted by id: what an evaluation of some rows only
    /// (`crate::evaluate_rows`) starts from.
    pub evaluated: RecordBatch,
}

/// Points per event matching a condition, each halved for every `half_life` of its age at the
/// as-of instant: `sum(points * 0.5 ^ (age / half_life))`, zero without events.
#[derive(Debug, Clone, PartialEq)]
pub struct PointsSpec {
    /// Points per matching event.
    pub points: f64,
    /// The half-life of an event's points; `None`: no decay.
    pub half_life: Option<segmenta_core::Window>,
    /// The condition over event columns.
    pub condition: Option<TypedExpr>,
    /// Only events within this window count.
    pub within: Option<segmenta_core::Within>,
}

/// The scan's result at one instant: one finished column per aggregate, aligned with the
/// entity indexes, and the event accounting.
#[derive(Clone)]
pub(crate) struct ScanResult {
    /// Finished values (zeros for empty counts and sums, NULL for empty averages, ...).
    pub columns: Vec<ArrayRef>,
    /// Events read, used, ignored.
    pub counts: EventCounts,
    /// Events without a key, and a sample of keys that match no entity.
    pub keys: EventKeys,
}

/// The event traits and event accounting of every entity of a request at one instant, scanned
/// for several instants at once by [`crate::scan_events`]; an evaluation given them
/// ([`EvalRequest::scanned`]) reads them instead of scanning the events.
pub struct ScannedEvents {
    pub(crate) as_of: i64,
    pub(crate) entities: std::collections::HashMap<String, ScanResult>,
}

impl std::fmt::Debug for ScannedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScannedEvents").field("as_of", &self.as_of).finish_non_exhaustive()
    }
}

impl ScannedEvents {
    pub(crate) fn get(&self, entity: &str, as_of: i64) -> Result<ScanResult> {
        if as_of != self.as_of {
            return Err(Error::Internal("events scanned for another instant".into()));
        }
        self.entities
            .get(entity)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("the events of `{entity}` were not scanned")))
    }
}
