//! The JSON types of the API, converted by hand from the engine's reports (the engine's types
//! do not derive `Serialize`: what the API promises is decided here).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: &'static str,
    /// segmenta's version.
    pub version: &'static str,
}

/// A segment of the latest run.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentItem {
    /// Its name (`scheme.tier` for a scheme's tier, `rfm.champions` for RFM).
    pub name: String,
    /// `rule`, `static`, `scheme`, `rfm`, `clv` or `movement`.
    pub kind: String,
    /// Its description in segmenta.toml.
    pub description: Option<String>,
    /// Members in the latest run.
    pub size: u64,
    /// Members over entities.
    pub share: f64,
    /// The latest run's as-of instant (RFC 3339).
    pub as_of: String,
}

/// `GET /v1/segments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentList {
    /// The latest run's as-of instant.
    pub as_of: String,
    /// Entities in the latest run.
    pub entities: u64,
    /// Every segment, in the run's order.
    pub segments: Vec<SegmentItem>,
}

/// A point of a segment's history: one snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPoint {
    /// The snapshot's id.
    pub snapshot: i64,
    /// Its as-of instant.
    pub as_of: String,
    /// Members.
    pub size: u64,
    /// Members over entities.
    pub share: f64,
    /// Members that were not in the previous snapshot.
    pub entered: u64,
    /// Members of the previous snapshot that are not members any more.
    pub exited: u64,
}

/// `GET /v1/segments/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentDetail {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its description.
    pub description: Option<String>,
    /// Its rule (a segment's or a scheme tier's), in the rule language.
    pub rule: Option<String>,
    /// The macro segment it lies inside.
    pub parent: Option<String>,
    /// A movement's `from` segment.
    pub from: Option<String>,
    /// A movement's `to` segment.
    pub to: Option<String>,
    /// Members in the latest run.
    pub size: u64,
    /// Members over entities.
    pub share: f64,
    /// The latest run's as-of instant.
    pub as_of: String,
    /// Size, entered and exited per snapshot, in as-of order.
    pub history: Vec<HistoryPoint>,
    /// The segment's KPIs at the latest run (as `segmenta kpis`), against the snapshot before
    /// it when there is one; absent for a segment the run did not compute KPIs for.
    pub kpis: Option<Kpis>,
    /// The same KPIs of the whole population, to compare with.
    pub population: Option<Kpis>,
    /// The snapshot retention, churn and acquisition are measured from.
    pub compared_with: Option<String>,
}

/// KPIs of a segment or of the population (docs/kpis.md); absent values are not configured
/// (`[kpis] revenue`, `goal`, `[clv]`) or need a snapshot to compare with.
#[derive(Debug, Serialize, ToSchema)]
pub struct Kpis {
    /// Members.
    pub size: u64,
    /// Of the entities.
    pub share: f64,
    /// Revenue of the members.
    pub revenue: Option<f64>,
    /// Revenue per member.
    pub arpa: Option<f64>,
    /// Members at the earlier snapshot still entities now.
    pub logo_retention: Option<f64>,
    /// 1 - logo retention.
    pub logo_churn: Option<f64>,
    /// Gross dollar retention.
    pub grr: Option<f64>,
    /// Net dollar retention.
    pub nrr: Option<f64>,
    /// Members that were not entities at the earlier snapshot.
    pub acquired: Option<u64>,
    /// Mean CLV of the members.
    pub clv_mean: Option<f64>,
    /// Share of members with a goal event in the window after the snapshot.
    pub conversion: Option<f64>,
}

impl From<&segmenta_engine::KpiRow> for Kpis {
    fn from(row: &segmenta_engine::KpiRow) -> Kpis {
        Kpis {
            size: row.size,
            share: row.share,
            revenue: row.revenue,
            arpa: row.arpa,
            logo_retention: row.logo_retention,
            logo_churn: row.logo_churn,
            grr: row.grr,
            nrr: row.nrr,
            acquired: row.acquired,
            clv_mean: row.clv_mean,
            conversion: row.conversion,
        }
    }
}

/// The query of `GET /v1/segments/{name}/members`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// The `next` cursor of the previous page (none: the first page).
    pub cursor: Option<String>,
    /// Members per page, 1 to 10,000 (default 100).
    pub limit: Option<usize>,
}

/// `GET /v1/segments/{name}/members` as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembersPage {
    /// The segment.
    pub segment: String,
    /// The latest run's as-of instant.
    pub as_of: String,
    /// All members of the segment.
    pub size: u64,
    /// This page's member ids, in natural order (`c2` before `c10`).
    pub members: Vec<String>,
    /// The cursor of the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/entities/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entity {
    /// Its id.
    pub id: String,
    /// The latest run's as-of instant.
    pub as_of: String,
    /// Attributes, traits, scores, scheme tiers and RFM values, by name (`null` when missing).
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, serde_json::Value>,
    /// The segments it is a member of.
    pub segments: Vec<String>,
}

/// `POST /v1/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A rule in the rule language (docs/language.md), e.g. `employees >= 200 and plan = 'pro'`.
    pub rule: String,
    /// How many member ids to return as a sample (default 10, at most 1,000).
    pub sample: Option<usize>,
}

/// The answer of `POST /v1/preview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// Entities for which the rule is TRUE in the latest run.
    pub size: u64,
    /// Entities in the latest run.
    pub entities: u64,
    /// `size / entities`.
    pub share: f64,
    /// The first members, by id.
    pub sample: Vec<String>,
    /// The latest run's as-of instant.
    pub as_of: String,
}

/// An API token as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// Its name.
    pub name: String,
    /// `viewer`, `editor` or `admin`.
    pub role: String,
    /// Its first characters.
    pub prefix: String,
    /// When it was created.
    pub created_at: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

/// `GET /v1/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Every token, revoked ones included, in creation order.
    pub tokens: Vec<Token>,
}

/// An operand of a condition and its value for the entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct Operand {
    /// As written.
    pub text: String,
    /// Its value for the entity (`null` when missing).
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// For a predictive trait: what drives it for this entity (the churn model's top features
    /// with their contributions, or the purchase summaries CLV is computed from).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<String>,
}

/// One node of a rule, for one entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainNode {
    /// The node's text, in the rule language.
    pub text: String,
    /// `true`, `false` or `unknown` (a value it reads is missing).
    pub truth: String,
    /// The values it compares.
    pub operands: Vec<Operand>,
    /// Its sub-conditions.
    #[schema(no_recursion)]
    pub children: Vec<ExplainNode>,
    /// For `in_segment('x')`: why the entity is or is not in `x`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub segment: Option<Box<Explanation>>,
}

/// A scheme tier tried for the entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierTried {
    /// The tier.
    pub tier: String,
    /// Its rule, as a tree.
    pub tree: ExplainNode,
}

/// How the entity's tier of a scheme was chosen.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemeChoice {
    /// The scheme.
    pub scheme: String,
    /// The entity's tier.
    pub matched: String,
    /// The tiers tried in order, up to the matched one.
    pub tried: Vec<TierTried>,
}

/// `GET /v1/entities/{id}/why/{segment}`: why the entity is, or is not, in the segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    /// The entity.
    pub entity: String,
    /// The segment.
    pub segment: String,
    /// The run's as-of instant.
    pub as_of: String,
    /// Whether the entity is a member in the run.
    pub member: bool,
    /// The rule as written (rule segments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The rule as a tree with each node's truth and operands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<ExplainNode>,
    /// The macro segment, explained (micro segments).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub parent: Option<Box<Explanation>>,
    /// For a scheme's tier: the tiers tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<SchemeChoice>,
    /// Values membership follows from where there is no rule (RFM scores, a movement's ends).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Operand>,
    /// What decides membership, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A value of the run as JSON.
pub fn cell_json(value: segmenta_engine::Cell) -> serde_json::Value {
    use segmenta_engine::Cell;
    match value {
        Cell::Null => serde_json::Value::Null,
        Cell::Bool(b) => serde_json::Value::Bool(b),
        Cell::Int(i) => i.into(),
        Cell::Float(f) => {
            serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Cell::Text(t) => serde_json::Value::String(t),
    }
}

fn operands(operands: Vec<segmenta_engine::Operand>) -> Vec<Operand> {
    operands
        .into_iter()
        .map(|o| Operand { text: o.text, value: cell_json(o.value), drivers: o.drivers })
        .collect()
}

impl From<segmenta_engine::ExplainNode> for ExplainNode {
    fn from(node: segmenta_engine::ExplainNode) -> ExplainNode {
        ExplainNode {
            text: node.text,
            truth: node.truth.name().to_string(),
            operands: operands(node.operands),
            children: node.children.into_iter().map(ExplainNode::from).collect(),
            segment: node.segment.map(|e| Box::new(Explanation::from(*e))),
        }
    }
}

impl From<segmenta_engine::Explanation> for Explanation {
    fn from(e: segmenta_engine::Explanation) -> Explanation {
        Explanation {
            entity: e.entity,
            segment: e.segment,
            as_of: e.as_of,
            member: e.member,
            rule: e.rule,
            tree: e.tree.map(ExplainNode::from),
            parent: e.parent.map(|p| Box::new(Explanation::from(*p))),
            scheme: e.scheme.map(|s| SchemeChoice {
                scheme: s.scheme,
                matched: s.matched,
                tried: s
                    .tried
                    .into_iter()
                    .map(|t| TierTried { tier: t.tier, tree: ExplainNode::from(t.tree) })
                    .collect(),
            }),
            values: operands(e.values),
            note: e.note,
        }
    }
}

/// `PUT /v1/segments/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveSegment {
    /// The rule, in the rule language.
    pub rule: String,
    /// What the segment is for (kept as it is when absent).
    pub description: Option<String>,
}

/// The answer of `PUT /v1/segments/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSegment {
    /// The segment.
    pub name: String,
    /// `created` or `replaced`.
    pub saved: String,
    /// Its rule, as saved.
    pub rule: String,
    /// Its size on the latest run, before the next run computes it (absent before any run).
    pub preview: Option<Preview>,
}

/// `POST /v1/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostEvents {
    /// An id the sender makes up for the batch (1 to 128 bytes, such as a UUID): a batch is
    /// taken once per id, so a retry after a lost answer appends nothing.
    pub batch: Option<String>,
    /// The events: JSON objects whose keys are columns of the events file (the entity key and
    /// the time are required); at most 10,000 per request.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Box<serde_json::value::RawValue>>,
}

/// The answer of `POST /v1/events`: accepted rows are on disk (synced) when it is sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostedEvents {
    /// Rows appended to the event log; the next run reads them.
    pub accepted: usize,
    /// Rows refused.
    pub rejected: usize,
    /// Why each refused row was refused, in the order posted.
    pub rejects: Vec<EventReject>,
    /// The `batch` id was taken before: nothing was appended this time (the counts are those
    /// of the batch, checked again).
    pub duplicate: bool,
    /// Of the accepted events, those whose entity key is no entity of the latest run: kept
    /// (the entity may come with the next run's data), but a run ignores them until it does.
    /// Absent before any run, and for events keyed by another entity than the project's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_entities: Option<usize>,
}

/// A refused event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventReject {
    /// 0-based position of the event in `events`.
    pub index: usize,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// What is wrong, with a "did you mean" for an unknown column.
    pub reason: String,
}

/// `POST /v1/runs` (the body may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The as-of: a date (its whole day, as `run --as-of`) or an RFC 3339 instant; default the
    /// project's.
    pub as_of: Option<String>,
}

/// How far a step with a known size is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// The step.
    pub step: String,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// A segment's size in a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunSegment {
    /// The segment.
    pub name: String,
    /// Members.
    pub size: u64,
    /// Members over entities.
    pub share: f64,
}

/// A background run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    /// Its number among this server's runs.
    pub id: u64,
    /// `running`, `succeeded`, `failed` or `interrupted` (the server stopped before it ended).
    pub state: String,
    /// When it started.
    pub started_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
    /// The as-of asked for.
    pub requested_as_of: Option<String>,
    /// The step it is at, while running.
    pub step: Option<String>,
    /// How far the step is, when its size is known.
    pub progress: Option<Progress>,
    /// The run's as-of instant, once written.
    pub as_of: Option<String>,
    /// Entities evaluated, once written.
    pub entities: Option<u64>,
    /// Segment sizes, once written.
    pub segments: Vec<RunSegment>,
    /// Why it failed.
    pub error: Option<crate::error::ErrorBody>,
}

/// `GET /v1/runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// The runs started over HTTP (kept in the store across restarts), newest first.
    pub runs: Vec<Run>,
}

impl From<segmenta_engine::RunStatus> for Run {
    fn from(run: segmenta_engine::RunStatus) -> Run {
        Run {
            id: run.id,
            state: run.state.name().to_string(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            requested_as_of: run.requested_as_of,
            step: run.step,
            progress: run.position.map(|(step, done, total)| Progress { step, done, total }),
            as_of: run.as_of,
            entities: run.entities,
            segments: run
                .segments
                .into_iter()
                .map(|(name, size, share)| RunSegment { name, size, share })
                .collect(),
            error: run.error.map(|e| crate::error::ErrorBody {
                code: e.code,
                message: e.message,
                hint: e.hint,
                line: None,
                column: None,
                problems: Vec::new(),
            }),
        }
    }
}

/// The query of `GET /v1/changes`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes after this sequence number (the `next_after` of the previous page; none: from
    /// the first).
    pub after: Option<i64>,
    /// Changes per page, 1 to 10,000 (default 1,000).
    pub limit: Option<usize>,
    /// Only this segment's changes.
    pub segment: Option<String>,
}

/// `GET /v1/changes`: changes of membership as posted events moved them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeList {
    /// In order of their sequence numbers.
    pub changes: Vec<Change>,
    /// The `after` of the next page: the last change's sequence number (or the `after` asked
    /// for, when there is none yet).
    pub next_after: i64,
    /// How far memberships followed the posted events; absent while the served run is not
    /// live (starting, or the project has no events).
    pub live: Option<LiveInfo>,
}

/// One change of membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct Change {
    /// Its sequence number (ascending, never reused).
    pub seq: i64,
    /// When it was computed, RFC 3339 UTC.
    pub at: String,
    /// The as-of instant of the memberships.
    pub as_of: String,
    /// The segment.
    pub segment: String,
    /// The entity.
    pub entity_id: String,
    /// `entered` or `exited`.
    pub change: &'static str,
}

impl From<segmenta_engine::MembershipChange> for Change {
    fn from(change: segmenta_engine::MembershipChange) -> Change {
        Change {
            seq: change.seq,
            at: change.at,
            as_of: change.as_of,
            segment: change.segment,
            entity_id: change.entity_id,
            change: if change.entered { "entered" } else { "exited" },
        }
    }
}

/// A live view's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveInfo {
    /// Posted events folded in since the served run was loaded.
    pub events: u64,
    /// How many of the events this server accepted since it started the memberships hold:
    /// all of them (`events_posted`) once they caught up.
    pub through: u64,
    /// Events this server accepted since it started.
    pub events_posted: u64,
    /// When memberships were last updated, RFC 3339 UTC.
    pub updated_at: String,
    /// The sequence number of the last change recorded.
    pub last_change: Option<i64>,
}
