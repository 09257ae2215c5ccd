//! What `segmenta serve` reads, held in memory: the latest run's table (attributes, traits,
//! scores, schemes) indexed by entity id, and every segment's members in natural order of their
//! ids, so that an entity lookup and a page of members cost a hash lookup and a binary search.
//!
//! [`ServedProject`] keeps the current [`ServedRun`] and swaps in the next one when the store's
//! latest pointer moves (a run finished): the new run is loaded beside the old, and readers
//! hold an `Arc` of one or the other, never a mix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use segmenta_rules::ast::Scalar;
use segmenta_store::Store;
use segmenta_store::formats::{RunSummary, SegmentKind};

use crate::error::{Error, Result};
use crate::latest::{Cell, cell, natural_order};
use crate::project::Project;

/// A recorded change of membership (`entered` / `exited`) of a live view.
pub use segmenta_store::catalog::Change as MembershipChange;

/// How often the latest pointer is looked at (a finished run is served within this).
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The most members one page holds.
pub const MAX_PAGE: usize = 10_000;

/// A segment as declared, for listings and detail pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDefinition {
    /// Its name.
    pub name: String,
    /// `rule`, `static`, `scheme`, `rfm`, `clv` or `movement`.
    pub kind: &'static str,
    /// Its description in `segmenta.toml`.
    pub description: Option<String>,
    /// Its rule (a segment's or a scheme tier's).
    pub rule: Option<String>,
    /// The macro segment it lies inside.
    pub parent: Option<String>,
    /// A movement's `from` and `to`.
    pub movement: Option<(Option<String>, Option<String>)>,
}

/// A segment of the served run.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedSegment {
    /// The definition.
    pub definition: SegmentDefinition,
    /// Members.
    pub size: u64,
    /// Members over entities.
    pub share: f64,
}

/// One entity as the served run holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityView {
    /// Its id.
    pub id: String,
    /// The run's as-of instant.
    pub as_of: String,
    /// Attributes, traits, scores, schemes and RFM values, in the table's order.
    pub values: Vec<(String, Cell)>,
    /// The segments it is a member of, in the run's order.
    pub segments: Vec<String>,
}

/// A page of a segment's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersPage {
    /// Ids, in natural order.
    pub ids: Vec<String>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    /// The segment's size.
    pub size: u64,
}

/// The latest run, in memory.
pub struct ServedRun {
    /// Its folder.
    pub run_dir: PathBuf,
    /// Its summary (the segments in the run's order, with their kinds and sizes).
    pub summary: RunSummary,
    ids: StringArray,
    row_of: Arc<HashMap<String, u32>>,
    /// The visible columns of the table.
    columns: Vec<(String, ArrayRef)>,
    /// Every column of the table that rules read (the visible ones and the parent's), by name.
    readable: HashMap<String, ArrayRef>,
    /// Rows in natural order of their ids.
    order: Arc<Vec<u32>>,
    /// Each row's position in `order`.
    rank: Arc<Vec<u32>>,
    /// Per segment, the ranks (positions in `order`) of its members, ascending.
    members: Vec<Vec<u32>>,
    by_name: HashMap<String, usize>,
    /// Set for a live view.
    live: Option<LiveState>,
}

/// How far a live view followed the posted events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveState {
    /// Posted events folded in since the run it started from was loaded (those the run read
    /// included).
    pub events: u64,
    /// How many of the events this server appended ([`ServedProject::events_posted`]) it
    /// holds: all of them once it caught up.
    pub through: u64,
    /// When it was last updated, RFC 3339 UTC.
    pub updated_at: String,
    /// The sequence number of the last change of membership recorded, if any.
    pub last_change: Option<i64>,
}

impl std::fmt::Debug for ServedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedRun")
            .field("run_dir", &self.run_dir)
            .field("entities", &self.ids.len())
            .finish()
    }
}

/// The definition of `name` as the project declares it (`kind` from the run).
pub fn segment_definition(project: &Project, name: &str, kind: SegmentKind) -> SegmentDefinition {
    let config = &project.config;
    let mut definition = SegmentDefinition {
        name: name.to_string(),
        kind: kind_name(kind),
        description: None,
        rule: None,
        parent: None,
        movement: None,
    };
    match kind {
        SegmentKind::Rule | SegmentKind::Static => {
            if let Some(segment) = config.segments.get(name) {
                definition.description = segment.description.clone();
                definition.rule = segment.rule.as_ref().map(|r| r.get_ref().clone());
                definition.parent = segment.parent.as_ref().map(|p| p.get_ref().clone());
            }
        }
        SegmentKind::Scheme => {
            let tier = name.split_once('.').and_then(|(scheme, tier)| {
                let scheme = config.schemes.get(scheme)?;
                Some((scheme, scheme.tiers.iter().find(|t| t.name.get_ref() == tier)))
            });
            if let Some((scheme, tier)) = tier {
                definition.description =
                    tier.and_then(|t| t.description.clone()).or(scheme.description.clone());
                definition.rule = tier.map(|t| t.rule.get_ref().clone());
            }
        }
        SegmentKind::Movement => {
            if let Some(movement) = config.movements.get(name) {
                definition.description = movement.description.clone();
                definition.movement = Some((
                    movement.from.as_ref().map(|f| f.get_ref().clone()),
                    movement.to.as_ref().map(|t| t.get_ref().clone()),
                ));
            }
        }
        SegmentKind::Rfm | SegmentKind::Clv => {}
    }
    definition
}

fn kind_name(kind: SegmentKind) -> &'static str {
    match kind {
        SegmentKind::Rule => "rule",
        SegmentKind::Static => "static",
        SegmentKind::Scheme => "scheme",
        SegmentKind::Rfm => "rfm",
        SegmentKind::Clv => "clv",
        SegmentKind::Movement => "movement",
    }
}

fn internal(path: &Path, what: &str) -> Error {
    Error::Internal(format!("{}: {what}", path.display()))
}

impl ServedRun {
    /// Loads the run in `run_dir`.
    pub fn load(run_dir: &Path) -> Result<ServedRun> {
        let _span = tracing::info_span!("serve_load").entered();
        let summary = segmenta_store::read_run_summary(run_dir)?;
        let table_path = run_dir.join(segmenta_store::files::TABLE);
        let table = segmenta_store::read_parquet(&table_path)?;
        let (member_ids, member_segments) = segmenta_store::read_memberships(run_dir)?;
        ServedRun::from_parts(run_dir, summary, &table, &member_ids, &member_segments)
    }

    /// The run `base` with the evaluation table of a live evaluation at its instant
    /// (`crate::live`): the same folder and entities, the sizes and members evaluated.
    pub(crate) fn live_view(
        base: &ServedRun,
        output: &segmenta_query::EvalOutput,
        live: LiveState,
    ) -> Result<ServedRun> {
        let mut summary = base.summary.clone();
        summary.entities = output.entities;
        for segment in &mut summary.segments {
            if let Some((_, size)) = output.segment_sizes.iter().find(|(name, _)| *name == segment.name) {
                segment.size = *size;
                segment.share =
                    if output.entities == 0 { 0.0 } else { *size as f64 / output.entities as f64 };
            }
        }
        let table = &output.table;
        let ids = table
            .column_by_name(segmenta_query::ENTITY_ID)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::Internal("a live table without text `entity_id`".into()))?;
        // The same entities in the same order (both tables are sorted by id): the indexes of
        // the stored run serve, and each segment's members are the rows of its flag column.
        if ids != &base.ids {
            return Err(Error::Internal(
                "the data files changed since the served run (its entities differ): memberships follow events again from the next run"
                    .into(),
            ));
        }
        let members = summary
            .segments
            .iter()
            .map(|segment| {
                let flag = live_flag(table, &segment.name)?;
                let mut ranks: Vec<u32> = (0..flag.len())
                    .filter(|&row| flag.is_valid(row) && flag.value(row))
                    .map(|row| base.rank[row])
                    .collect();
                ranks.sort_unstable();
                Ok(ranks)
            })
            .collect::<Result<Vec<_>>>()?;
        let (columns, readable) = ServedRun::columns_of(table);
        Ok(ServedRun {
            run_dir: base.run_dir.clone(),
            by_name: summary.segments.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect(),
            summary,
            ids: ids.clone(),
            row_of: base.row_of.clone(),
            columns,
            readable,
            order: base.order.clone(),
            rank: base.rank.clone(),
            members,
            live: Some(live),
        })
    }

    /// [`ServedRun::live_view`] for an evaluation that changed only the rows `rows` of the table
    /// (ascending; every other row is as `self`, a view of the same entities, holds it): each
    /// segment's members patched at those rows alone. Also the changes of membership from
    /// `self`, as [`ServedRun::changes_to`] gives them.
    #[allow(clippy::type_complexity)]
    pub(crate) fn patched_view(
        &self,
        output: &segmenta_query::EvalOutput,
        rows: &[u32],
        live: LiveState,
    ) -> Result<(ServedRun, Vec<(String, Vec<String>, Vec<String>)>)> {
        let mut summary = self.summary.clone();
        summary.entities = output.entities;
        let table = &output.table;
        if table.num_rows() != self.ids.len() {
            return Err(Error::Internal("a live table of other entities".into()));
        }
        let mut members = Vec::with_capacity(summary.segments.len());
        let mut changes = Vec::new();
        for (segment, before) in summary.segments.iter_mut().zip(&self.members) {
            let flag = live_flag(table, &segment.name)?;
            let (mut entered, mut exited): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
            for &row in rows {
                let rank = self.rank[row as usize];
                let now = flag.is_valid(row as usize) && flag.value(row as usize);
                match (before.binary_search(&rank).is_ok(), now) {
                    (false, true) => entered.push(rank),
                    (true, false) => exited.push(rank),
                    _ => {}
                }
            }
            let after = if entered.is_empty() && exited.is_empty() {
                before.clone()
            } else {
                entered.sort_unstable();
                exited.sort_unstable();
                let mut after: Vec<u32> =
                    before.iter().copied().filter(|r| exited.binary_search(r).is_err()).collect();
                after.extend_from_slice(&entered);
                after.sort_unstable();
                let ids = |ranks: &[u32]| ranks.iter().map(|&r| self.id_at_rank(r).to_string()).collect();
                changes.push((segment.name.clone(), ids(&entered), ids(&exited)));
                after
            };
            segment.size = after.len() as u64;
            segment.share =
                if output.entities == 0 { 0.0 } else { after.len() as f64 / output.entities as f64 };
            members.push(after);
        }
        let (columns, readable) = ServedRun::columns_of(table);
        let view = ServedRun {
            run_dir: self.run_dir.clone(),
            by_name: self.by_name.clone(),
            summary,
            ids: self.ids.clone(),
            row_of: self.row_of.clone(),
            columns,
            readable,
            order: self.order.clone(),
            rank: self.rank.clone(),
            members,
            live: Some(live),
        };
        Ok((view, changes))
    }

    /// The visible columns of a run's table, and every column rules read by name.
    fn columns_of(table: &arrow::array::RecordBatch) -> (Vec<(String, ArrayRef)>, HashMap<String, ArrayRef>) {
        let columns: Vec<(String, ArrayRef)> = table
            .schema()
            .fields()
            .iter()
            .zip(table.columns())
            .filter(|(f, _)| {
                f.name() != segmenta_query::ENTITY_ID && !segmenta_core::hidden::is_reserved(f.name())
            })
            .map(|(f, c)| (f.name().clone(), c.clone()))
            .collect();
        let readable: HashMap<String, ArrayRef> = table
            .schema()
            .fields()
            .iter()
            .zip(table.columns())
            .filter(|(f, _)| {
                !segmenta_core::hidden::is_reserved(f.name())
                    || segmenta_core::hidden::is_parent_column(f.name())
            })
            .map(|(f, c)| (f.name().clone(), c.clone()))
            .collect();
        (columns, readable)
    }

    fn from_parts(
        run_dir: &Path,
        summary: RunSummary,
        table: &arrow::array::RecordBatch,
        member_ids: &StringArray,
        member_segments: &StringArray,
    ) -> Result<ServedRun> {
        let table_path = run_dir.join(segmenta_store::files::TABLE);
        let ids = table
            .column_by_name(segmenta_query::ENTITY_ID)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| internal(&table_path, "no text `entity_id`"))?
            .clone();
        let mut row_of = HashMap::with_capacity(ids.len());
        for (row, id) in ids.iter().enumerate() {
            if let Some(id) = id {
                row_of.insert(id.to_string(), row as u32);
            }
        }
        let (columns, readable) = ServedRun::columns_of(table);
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_by(|&a, &b| natural_order(ids.value(a as usize), ids.value(b as usize)));
        let mut rank = vec![0u32; ids.len()];
        for (position, &row) in order.iter().enumerate() {
            rank[row as usize] = position as u32;
        }
        let by_name: HashMap<String, usize> =
            summary.segments.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        let mut members: Vec<Vec<u32>> =
            summary.segments.iter().map(|s| Vec::with_capacity(s.size as usize)).collect();
        for i in 0..member_ids.len() {
            if member_ids.is_null(i) || member_segments.is_null(i) {
                continue;
            }
            let (Some(&segment), Some(&row)) =
                (by_name.get(member_segments.value(i)), row_of.get(member_ids.value(i)))
            else {
                return Err(internal(run_dir, "a membership of an entity or segment the run does not have"));
            };
            members[segment].push(rank[row as usize]);
        }
        for list in &mut members {
            list.sort_unstable();
        }
        Ok(ServedRun {
            run_dir: run_dir.to_path_buf(),
            summary,
            ids,
            row_of: Arc::new(row_of),
            columns,
            readable,
            order: Arc::new(order),
            rank: Arc::new(rank),
            members,
            by_name,
            live: None,
        })
    }

    pub(crate) fn set_last_change(&mut self, last: Option<i64>) {
        if let Some(live) = self.live.as_mut() {
            live.last_change = last;
        }
    }

    /// Whether this is a live view (memberships that followed posted events), and how far.
    pub fn live(&self) -> Option<&LiveState> {
        self.live.as_ref()
    }

    /// The changes of membership from `self` to `next` (views of the same entities): per
    /// segment of `next`, the ids that entered and those that exited, in natural order.
    pub(crate) fn changes_to(&self, next: &ServedRun) -> Vec<(String, Vec<String>, Vec<String>)> {
        let mut out = Vec::new();
        for (segment, after) in next.summary.segments.iter().zip(&next.members) {
            let before: &[u32] = self.by_name.get(&segment.name).map_or(&[], |&i| &self.members[i]);
            let (mut entered, mut exited) = (Vec::new(), Vec::new());
            let (mut i, mut j) = (0, 0);
            while i < before.len() || j < after.len() {
                match (before.get(i), after.get(j)) {
                    (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
                    (Some(a), Some(b)) if a < b => {
                        exited.push(self.id_at_rank(*a).to_string());
                        i += 1;
                    }
                    (Some(a), None) => {
                        exited.push(self.id_at_rank(*a).to_string());
                        i += 1;
                    }
                    (_, Some(b)) => {
                        entered.push(next.id_at_rank(*b).to_string());
                        j += 1;
                    }
                    (None, None) => break,
                }
            }
            if !entered.is_empty() || !exited.is_empty() {
                out.push((segment.name.clone(), entered, exited));
            }
        }
        out
    }

    /// Every segment's members, ids in natural order (for tests and comparisons).
    pub fn all_members(&self) -> Vec<(String, Vec<String>)> {
        self.summary
            .segments
            .iter()
            .zip(&self.members)
            .map(|(s, ranks)| {
                (s.name.clone(), ranks.iter().map(|&r| self.id_at_rank(r).to_string()).collect())
            })
            .collect()
    }

    /// The run's as-of instant.
    pub fn as_of(&self) -> &str {
        &self.summary.as_of
    }

    /// Entities in the run.
    pub fn entities(&self) -> u64 {
        self.ids.len() as u64
    }

    /// Every segment of the run, in its order, each defined as `project` declares it now (a
    /// rule saved since the run shows; sizes are the run's).
    pub fn segments(&self, project: &Project) -> Vec<ServedSegment> {
        self.summary
            .segments
            .iter()
            .map(|s| ServedSegment {
                definition: segment_definition(project, &s.name, s.kind),
                size: s.size,
                share: s.share,
            })
            .collect()
    }

    /// The segment `name` of the run (declared and computed), defined as in [`Self::segments`].
    pub fn segment(&self, project: &Project, name: &str) -> Result<ServedSegment> {
        let s = &self.summary.segments[self.segment_index(project, name)?];
        Ok(ServedSegment {
            definition: segment_definition(project, name, s.kind),
            size: s.size,
            share: s.share,
        })
    }

    fn segment_index(&self, project: &Project, name: &str) -> Result<usize> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(i);
        }
        crate::latest::check_declared(project, name)?;
        Err(Error::SegmentNotInRun {
            name: name.to_string(),
            run: self.run_dir.clone(),
            as_of: self.summary.as_of.clone(),
        })
    }

    /// The row of entity `id`.
    pub(crate) fn row(&self, id: &str) -> Result<usize> {
        if let Some(&row) = self.row_of.get(id) {
            return Ok(row as usize);
        }
        let hint = if self.ids.is_empty() {
            "the run has no entities".to_string()
        } else {
            let first = self.ids.value(self.order[0] as usize);
            format!(
                "ids are the entity key as the data holds it (e.g. `{first}`); a new entity appears after the next run"
            )
        };
        Err(Error::UnknownEntity { id: id.to_string(), as_of: self.summary.as_of.clone(), hint })
    }

    /// The id of `row`.
    pub(crate) fn id(&self, row: usize) -> &str {
        self.ids.value(row)
    }

    /// Whether the table has a column rules read named `name`.
    pub(crate) fn has_column(&self, name: &str) -> bool {
        self.readable.contains_key(name)
    }

    /// The value of `column` at `row` as the reference evaluator reads it (NULL for a column
    /// the run does not have).
    pub(crate) fn scalar(&self, column: &str, row: usize) -> Scalar {
        let Some(array) = self.readable.get(column) else {
            return Scalar::Null;
        };
        if array.is_null(row) {
            return Scalar::Null;
        }
        match array.data_type() {
            DataType::Utf8 => Scalar::String(array.as_string::<i32>().value(row).to_string()),
            DataType::Int64 => Scalar::Int(array.as_primitive::<Int64Type>().value(row)),
            DataType::Float64 => Scalar::Float(array.as_primitive::<Float64Type>().value(row)),
            DataType::Boolean => Scalar::Bool(array.as_boolean().value(row)),
            DataType::Date32 => Scalar::Date(array.as_primitive::<Date32Type>().value(row)),
            DataType::Timestamp(_, _) => {
                Scalar::Timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row))
            }
            _ => Scalar::Null,
        }
    }

    /// Whether `row` is a member of `segment` in the run.
    pub(crate) fn is_member(&self, segment: &str, row: usize) -> bool {
        self.by_name.get(segment).is_some_and(|&i| self.members[i].binary_search(&self.rank[row]).is_ok())
    }

    /// One entity: its values and segments.
    pub fn entity(&self, id: &str) -> Result<EntityView> {
        let row = self.row(id)?;
        let options = FormatOptions::default();
        let mut values = Vec::with_capacity(self.columns.len());
        for (name, column) in &self.columns {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
                .map_err(|e| Error::Query(segmenta_query::Error::from(e)))?;
            values.push((name.clone(), cell(column.as_ref(), &formatter, row)));
        }
        let rank = self.rank[row];
        let segments = self
            .summary
            .segments
            .iter()
            .zip(&self.members)
            .filter(|(_, ranks)| ranks.binary_search(&rank).is_ok())
            .map(|(s, _)| s.name.clone())
            .collect();
        Ok(EntityView { id: id.to_string(), as_of: self.summary.as_of.clone(), values, segments })
    }

    /// A page of at most `limit` members of `segment` after the cursor `after` (from the
    /// first without one), in natural order of their ids.
    pub fn members_page(
        &self,
        project: &Project,
        segment: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<MembersPage> {
        let index = self.segment_index(project, segment)?;
        if limit == 0 || limit > MAX_PAGE {
            return Err(Error::Usage {
                message: format!("limit {limit} is out of range"),
                hint: Some(format!("ask for 1 to {MAX_PAGE} members a page")),
            });
        }
        let ranks = &self.members[index];
        let start = match after {
            None => 0,
            Some(cursor) => {
                let last = decode_cursor(cursor)?;
                // Members whose id sorts after the cursor's: the same place whether or not the
                // cursor's entity is still there (a page asked for after a new run).
                ranks.partition_point(|&rank| {
                    natural_order(self.id_at_rank(rank), &last) != std::cmp::Ordering::Greater
                })
            }
        };
        let end = (start + limit).min(ranks.len());
        let ids: Vec<String> = ranks[start..end].iter().map(|&r| self.id_at_rank(r).to_string()).collect();
        let next = if end < ranks.len() { ids.last().map(|id| encode_cursor(id)) } else { None };
        Ok(MembersPage { ids, next, size: ranks.len() as u64 })
    }

    /// Members `start..start + len` of `segment` (fewer at the end), in natural order: what a
    /// stream of every member reads, a slice at a time.
    pub fn members_slice(
        &self,
        project: &Project,
        segment: &str,
        start: usize,
        len: usize,
    ) -> Result<Vec<&str>> {
        let ranks = &self.members[self.segment_index(project, segment)?];
        let start = start.min(ranks.len());
        let end = start.saturating_add(len).min(ranks.len());
        Ok(ranks[start..end].iter().map(|&r| self.id_at_rank(r)).collect())
    }

    fn id_at_rank(&self, rank: u32) -> &str {
        self.ids.value(self.order[rank as usize] as usize)
    }
}

/// The flag column of `segment` in a live evaluation's table.
fn live_flag<'t>(
    table: &'t arrow::array::RecordBatch,
    segment: &str,
) -> Result<&'t arrow::array::BooleanArray> {
    table
        .column_by_name(&segmenta_query::segment_flag(segment))
        .and_then(|c| c.as_boolean_opt())
        .ok_or_else(|| Error::Internal(format!("a live table without the flag of `{segment}`")))
}

/// A cursor is the hex of the last id of a page: opaque to clients, safe in a URL.
fn encode_cursor(id: &str) -> String {
    crate::access::hex(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String> {
    let bad = || Error::Usage {
        message: format!("invalid cursor `{}`", cursor.chars().take(40).collect::<String>()),
        hint: Some(
            "pass the `next` cursor of the previous page as it came, or leave it out for the first page"
                .into(),
        ),
    };
    if !cursor.len().is_multiple_of(2) || cursor.len() > 2048 {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| cursor.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// A project as a server serves it: the project and its current run, reloaded when a later run
/// becomes the latest.
pub struct ServedProject {
    /// The project as its file is now (replaced by each edit).
    project: std::sync::RwLock<Arc<Project>>,
    /// The validated project, for the run it was validated with (its folder); dropped by edits.
    plan: Mutex<Option<(PathBuf, Arc<crate::plan::Plan>)>>,
    /// The KPIs of the last run they were computed for (its folder).
    kpis: Mutex<Option<(PathBuf, Arc<crate::kpis::KpiReport>)>>,
    /// Edits of the project file, one at a time.
    edits: Mutex<()>,
    /// The event log posted events go to.
    intake: crate::intake::Intake,
    /// The events' schema posted events are checked against, with the number of runs loaded
    /// when it was read (a later run, or an edit, reads it again).
    events: Mutex<Option<(u64, Arc<crate::sources::PlannedEvents>, bool)>>,
    /// Loads of a run, one at a time.
    loads: Mutex<()>,
    /// How many runs were loaded.
    loaded: std::sync::atomic::AtomicU64,
    /// Bumped by every edit of the project file (a live evaluation starts again).
    generation: std::sync::atomic::AtomicU64,
    state: Mutex<ServedState>,
}

struct ServedState {
    run: Option<Arc<ServedRun>>,
    /// The live view of `run`, when memberships follow events (`crate::live`).
    live: Option<Arc<ServedRun>>,
    checked: Option<Instant>,
    loading: bool,
}

impl ServedState {
    /// The live view of `run` when there is one, else `run`.
    fn preferred(&self, run: &Arc<ServedRun>) -> Arc<ServedRun> {
        match &self.live {
            Some(view) if view.run_dir == run.run_dir => view.clone(),
            _ => run.clone(),
        }
    }
}

impl ServedProject {
    /// Serves `project` (its latest run is loaded on first use).
    pub fn new(project: Project) -> ServedProject {
        ServedProject {
            intake: crate::intake::Intake::new(&project),
            events: Mutex::new(None),
            project: std::sync::RwLock::new(Arc::new(project)),
            edits: Mutex::new(()),
            loads: Mutex::new(()),
            loaded: std::sync::atomic::AtomicU64::new(0),
            plan: Mutex::new(None),
            kpis: Mutex::new(None),
            state: Mutex::new(ServedState { run: None, live: None, checked: None, loading: false }),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The project as its file is now.
    pub fn project(&self) -> Arc<Project> {
        match self.project.read() {
            Ok(project) => project.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The project validated (its rules resolved against the data's columns), kept while the
    /// served run and the project file stay the same: validation reads the data files' headers.
    pub(crate) fn plan(&self, run: &ServedRun) -> Result<Arc<crate::plan::Plan>> {
        let mut cached =
            self.plan.lock().map_err(|_| Error::Internal("the plan cache's lock is poisoned".into()))?;
        if let Some((_, plan)) = cached.as_ref().filter(|(dir, _)| same_folder(dir, &run.run_dir)) {
            return Ok(plan.clone());
        }
        let plan = Arc::new(crate::validate::validate(&self.project())?);
        *cached = Some((run.run_dir.clone(), plan.clone()));
        Ok(plan)
    }

    /// The KPIs of every segment at the current run, against the snapshot before it when
    /// there is one (retention, churn, acquisition); computed once per run, then kept.
    pub fn kpis(&self, engine: &crate::engine::Engine) -> Result<Arc<crate::kpis::KpiReport>> {
        let run = self.current()?;
        let mut cached =
            self.kpis.lock().map_err(|_| Error::Internal("the KPI cache's lock is poisoned".into()))?;
        if let Some((_, report)) = cached.as_ref().filter(|(dir, _)| same_folder(dir, &run.run_dir)) {
            return Ok(report.clone());
        }
        let project = self.project();
        let snapshots = crate::stored::snapshots(&project)?;
        let at = snapshots.iter().position(|s| same_folder(&s.run_dir, &run.run_dir));
        let options = crate::kpis::KpiOptions {
            at: at.map(|i| snapshots[i].id.to_string()),
            compare: at.and_then(|i| i.checked_sub(1)).map(|i| snapshots[i].id.to_string()),
            ..Default::default()
        };
        let report = Arc::new(engine.kpis(&project, &options, &crate::progress::NoProgress)?);
        *cached = Some((run.run_dir.clone(), report.clone()));
        Ok(report)
    }

    /// Saves the rule segment `name` (`segment_edit::save_segment`) on the project file as it is
    /// on disk now, one edit at a time; later requests read the edited project.
    pub fn save_segment(
        &self,
        name: &str,
        rule: &str,
        description: Option<&str>,
    ) -> Result<crate::segment_edit::Saved> {
        self.edit(|project| crate::segment_edit::save_segment(project, name, rule, description))
    }

    /// Deletes the rule segment `name` (`segment_edit::delete_segment`), as [`Self::save_segment`].
    pub fn delete_segment(&self, name: &str) -> Result<()> {
        self.edit(|project| Ok((crate::segment_edit::delete_segment(project, name)?, ())))
    }

    fn edit<T>(&self, change: impl FnOnce(&Project) -> Result<(Project, T)>) -> Result<T> {
        let _one_at_a_time =
            self.edits.lock().map_err(|_| Error::Internal("the edit lock is poisoned".into()))?;
        let on_disk = Project::load(&self.project().file)?;
        let (edited, outcome) = change(&on_disk)?;
        match self.project.write() {
            Ok(mut project) => *project = Arc::new(edited),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(edited),
        }
        if let Ok(mut plan) = self.plan.lock() {
            *plan = None;
        }
        if let Ok(mut events) = self.events.lock() {
            *events = None;
        }
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(outcome)
    }

    /// Checks posted events (`rows`: each the text of one JSON object) against the events'
    /// schema and appends the accepted ones to the store's event log, synced before this
    /// returns; the next run reads them. Works before any run. A `batch` id makes a retry of
    /// the same batch append nothing ([`crate::intake::Intake::ingest`]).
    pub fn ingest_events(&self, rows: &[String], batch: Option<&str>) -> Result<crate::intake::IngestReport> {
        let (events, keyed_by_served) = self.planned_events()?;
        // Events of the served entity (not one made from the events' own keys) name an entity
        // of the served run, when there is one.
        let run = if keyed_by_served { self.current().ok() } else { None };
        let known = run.as_ref().map(|run| move |id: &str| run.row_of.contains_key(id));
        let known = known.as_ref().map(|f| f as &dyn Fn(&str) -> bool);
        self.intake.ingest(&events, rows, batch, known)
    }

    /// How many events this server appended to the event log since it started.
    pub fn events_posted(&self) -> u64 {
        self.intake.appended()
    }

    /// The planned events, and whether their keys are ids of the served entity.
    fn planned_events(&self) -> Result<(Arc<crate::sources::PlannedEvents>, bool)> {
        let runs = self.runs_loaded();
        let mut cached =
            self.events.lock().map_err(|_| Error::Internal("the events cache's lock is poisoned".into()))?;
        if let Some((_, events, keyed)) = cached.as_ref().filter(|(at, _, _)| *at == runs) {
            return Ok((events.clone(), *keyed));
        }
        let plan = crate::validate::validate(&self.project())?;
        let keyed = plan.events.as_ref().is_some_and(|e| {
            e.entity == plan.entity && plan.entities.iter().any(|p| p.name == plan.entity && !p.from_events)
        });
        let events = Arc::new(plan.events.ok_or(Error::NoEvents)?);
        *cached = Some((runs, events.clone(), keyed));
        Ok((events, keyed))
    }

    /// How many runs this server loaded (the first, and each later one that landed).
    pub fn runs_loaded(&self) -> u64 {
        self.loaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The served run when the latest pointer was looked at less than [`RELOAD_CHECK`] ago (or
    /// a later run is loading): what most requests read, without touching a file, so a server
    /// can answer them on its async threads.
    pub fn recent(&self) -> Option<Arc<ServedRun>> {
        let state = self.state.lock().ok()?;
        let recent = state.loading || state.checked.is_some_and(|t| t.elapsed() < RELOAD_CHECK);
        state.run.as_ref().filter(|_| recent).map(|run| state.preferred(run))
    }

    /// [`Self::recent`], the stored run itself (not its live view).
    fn recent_stored(&self) -> Option<Arc<ServedRun>> {
        let state = self.state.lock().ok()?;
        let recent = state.loading || state.checked.is_some_and(|t| t.elapsed() < RELOAD_CHECK);
        state.run.clone().filter(|_| recent)
    }

    /// The run to read now ([`Self::current_stored`]), as its live view when memberships
    /// follow events ([`Self::follow_events`]).
    pub fn current(&self) -> Result<Arc<ServedRun>> {
        if let Some(run) = self.recent() {
            return Ok(run);
        }
        let run = self.current_stored()?;
        let state =
            self.state.lock().map_err(|_| Error::Internal("the served run's lock is poisoned".into()))?;
        Ok(state.preferred(&run))
    }

    /// The run to read now: the latest complete one. A run that finished since the last look
    /// (at most [`RELOAD_CHECK`] ago) is loaded first; while it loads, other callers get the
    /// previous one, and callers with none to get wait for that one load.
    pub fn current_stored(&self) -> Result<Arc<ServedRun>> {
        let poisoned = || Error::Internal("the served run's lock is poisoned".into());
        if let Some(run) = self.recent_stored() {
            return Ok(run);
        }
        {
            let mut state = self.state.lock().map_err(|_| poisoned())?;
            if state.run.is_some() {
                state.checked = Some(Instant::now());
            }
        }
        // One load at a time; whoever waited here finds the run the one before it loaded.
        let _one_load = self.loads.lock().map_err(|_| poisoned())?;
        let latest = Store::new(self.project().store_dir()).latest()?;
        {
            let mut state = self.state.lock().map_err(|_| poisoned())?;
            if let Some(run) = state.run.as_ref().filter(|r| same_folder(&r.run_dir, &latest)) {
                let run = run.clone();
                state.checked = Some(Instant::now());
                return Ok(run);
            }
            state.loading = true;
        }
        let loaded = ServedRun::load(&latest).map(Arc::new);
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        state.loading = false;
        let run = loaded?;
        self.loaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state.run = Some(run.clone());
        state.checked = Some(Instant::now());
        Ok(run)
    }
}

impl ServedProject {
    /// At most `limit` changes of membership recorded after sequence number `after` (0: from
    /// the first), of one segment when given, in order.
    pub fn changes(&self, after: i64, limit: usize, segment: Option<&str>) -> Result<Vec<MembershipChange>> {
        changes(&self.project(), after, limit, segment)
    }

    pub(crate) fn set_live_view(&self, view: Option<Arc<ServedRun>>) {
        if let Ok(mut state) = self.state.lock() {
            state.live = view;
        }
    }

    /// The event log's intake.
    pub(crate) fn intake(&self) -> &crate::intake::Intake {
        &self.intake
    }

    /// How many times the project file was edited since the server started.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// At most `limit` (1 to [`MAX_PAGE`]) changes of membership a server's live view recorded in
/// `project`'s store after sequence number `after` (0: from the first), of the declared segment
/// `segment` when given, in order.
pub fn changes(
    project: &Project,
    after: i64,
    limit: usize,
    segment: Option<&str>,
) -> Result<Vec<MembershipChange>> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::Usage {
            message: format!("limit {limit} is out of range"),
            hint: Some(format!("ask for 1 to {MAX_PAGE} changes a page")),
        });
    }
    if let Some(name) = segment {
        crate::latest::check_declared(project, name)?;
    }
    match segmenta_store::catalog::existing(&project.store_dir())? {
        Some(catalog) => Ok(catalog.changes(after, limit, segment)?),
        None => Ok(Vec::new()),
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_id_and_refuse_garbage() {
        for id in ["c1", "ünïcode id", "", "a/b?c=d&e"] {
            assert_eq!(decode_cursor(&encode_cursor(id)).expect("decodes"), id);
        }
        for bad in ["abc", "zz", "ff", "c3 28"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
