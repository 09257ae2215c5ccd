//! "Why is this entity in this segment": a segment's rule as a tree whose every node carries its
//! three-valued truth for one entity and every comparison its operands as that entity's values,
//! evaluated by the reference evaluator (`segmenta_rules::eval`) on the entity's row of the
//! served run. A scheme's tier shows the tiers tried before it; `in_segment` references and a
//! micro segment's macro segment are explained in turn. Membership itself is the run's: an
//! explanation whose verdict disagreed with it would be a bug, and a test holds them together.

use segmenta_query::Derived;
use segmenta_rules::ast::{CmpOp, Scalar, StringOp, TypedExpr, TypedValue};

use crate::error::{Error, Result};
use crate::latest::Cell;
use crate::plan::Plan;
use crate::serving::{ServedProject, ServedRun};

/// A three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// TRUE.
    True,
    /// FALSE.
    False,
    /// Unknown: a value it reads is missing (SQL NULL).
    Unknown,
}

impl Truth {
    fn of(value: Option<bool>) -> Truth {
        match value {
            Some(true) => Truth::True,
            Some(false) => Truth::False,
            None => Truth::Unknown,
        }
    }

    /// `true`, `false` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Truth::True => "true",
            Truth::False => "false",
            Truth::Unknown => "unknown",
        }
    }
}

/// An operand of a condition and its value for the entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    /// As written (`employees`, `revenue_365d / 12`).
    pub text: String,
    /// Its value.
    pub value: Cell,
    /// For a predictive trait, what drives its value for this entity: the churn model's
    /// features that raise the risk most, with their contributions to the log-odds
    /// (`churn_drivers`); or the purchase summaries the CLV models read (frequency, recency,
    /// age, mean amount).
    pub drivers: Vec<String>,
}

/// One node of a rule, for one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainNode {
    /// The node's text.
    pub text: String,
    /// Its truth for the entity.
    pub truth: Truth,
    /// The values it compares (columns and computed values; constants are in the text).
    pub operands: Vec<Operand>,
    /// Its sub-conditions (`and`, `or`, `not`).
    pub children: Vec<ExplainNode>,
    /// For `in_segment('x')`: why the entity is (or is not) in `x`.
    pub segment: Option<Box<Explanation>>,
}

/// One tier of a scheme, tried for the entity.
#[derive(Debug, Clone, PartialEq)]
pub struct TierTried {
    /// The tier.
    pub tier: String,
    /// Its rule, as a tree.
    pub tree: ExplainNode,
}

/// How the entity's tier of a scheme was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemeChoice {
    /// The scheme.
    pub scheme: String,
    /// The tier the entity is in (the first whose rule is TRUE, else the `otherwise` tier).
    pub matched: String,
    /// The tiers tried, in order, up to and including the matched one (all when none matched).
    pub tried: Vec<TierTried>,
}

/// Why an entity is, or is not, a member of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The entity.
    pub entity: String,
    /// The segment.
    pub segment: String,
    /// The served run's as-of instant.
    pub as_of: String,
    /// Whether the entity is a member (the run's verdict).
    pub member: bool,
    /// The rule, as written, for rule segments.
    pub rule: Option<String>,
    /// The rule as a tree, for rule segments.
    pub tree: Option<ExplainNode>,
    /// The macro segment a micro segment lies inside, explained.
    pub parent: Option<Box<Explanation>>,
    /// For a scheme's tier: the tiers tried.
    pub scheme: Option<SchemeChoice>,
    /// Values the membership follows from where there is no rule (RFM scores, a movement's
    /// ends).
    pub values: Vec<Operand>,
    /// What decides membership, in words, where there is no rule.
    pub note: Option<String>,
}

/// How deep `in_segment` references and macro segments are followed (the project's segment
/// graph has no cycles; this bounds the size of an answer).
const MAX_DEPTH: usize = 8;

/// Explains the membership of entity `id` in `segment` (every segment of the run without one),
/// on `run`, with the rules of `plan`.
pub(crate) fn explain_on(
    plan: &Plan,
    run: &ServedRun,
    id: &str,
    segment: Option<&str>,
) -> Result<Vec<Explanation>> {
    let row = EntityRow { run, row: run.row(id)? };
    let names: Vec<String> = match segment {
        Some(segment) => {
            run.segment(&plan.project, segment)?;
            vec![segment.to_string()]
        }
        None => run.summary.segments.iter().map(|s| s.name.clone()).collect(),
    };
    names.iter().map(|name| explain_segment(plan, &row, name, 0)).collect()
}

/// `segmenta explain`: the same, on the project's latest run.
pub fn explain(
    project: &crate::project::Project,
    id: &str,
    segment: Option<&str>,
) -> Result<Vec<Explanation>> {
    let plan = crate::validate::validate(project)?;
    let latest = segmenta_store::Store::new(project.store_dir()).latest()?;
    let run = ServedRun::load(&latest)?;
    explain_on(&plan, &run, id, segment)
}

impl ServedProject {
    /// Why entity `id` is (or is not) in `segment`, or in each segment of the current run
    /// without one, with the project's rules as they are now.
    pub fn explain(&self, id: &str, segment: Option<&str>) -> Result<Vec<Explanation>> {
        let run = self.current()?;
        let plan = self.plan(&run)?;
        explain_on(&plan, &run, id, segment)
    }
}

struct EntityRow<'a> {
    run: &'a ServedRun,
    row: usize,
}

impl segmenta_rules::eval::Row for EntityRow<'_> {
    fn get(&self, column: &str) -> Scalar {
        self.run.scalar(column, self.row)
    }

    fn in_segment(&self, segment: &str) -> bool {
        self.run.is_member(segment, self.row)
    }
}

fn explain_segment(plan: &Plan, row: &EntityRow<'_>, segment: &str, depth: usize) -> Result<Explanation> {
    let member = row.run.is_member(segment, row.row);
    let mut explanation = Explanation {
        entity: row.run.id(row.row).to_string(),
        segment: segment.to_string(),
        as_of: row.run.as_of().to_string(),
        member,
        rule: None,
        tree: None,
        parent: None,
        scheme: None,
        values: Vec::new(),
        note: None,
    };
    let derived = plan.derived.iter().find(|d| derived_name(d) == Some(segment));
    if let (Some(clv), true) = (&plan.project.config.clv, segment == segmenta_core::config::DIAMONDS_SEGMENT)
    {
        // Decided by ranks among all entities (kept in a column the run does not write): the
        // values ranked, and the rule in words.
        let names = clv.trait_names();
        for name in [&names[4], &names[8]] {
            explanation.values.push(Operand {
                text: name.clone(),
                value: cell(row.run.scalar(name, row.row)),
                drivers: drivers(plan, name, row),
            });
        }
        let defaults = segmenta_ml::clv::DiamondOptions::default();
        let bottom = clv.bottom_value_share.unwrap_or(defaults.bottom_value_share) * 100.0;
        let top = clv.top_clv_share.unwrap_or(defaults.top_clv_share) * 100.0;
        explanation.note = Some(format!(
            "a member when in the bottom {bottom}% of entities by `{}` and in the top {top}% by `{}` (ranked over all entities; ties are never split)",
            names[4], names[8]
        ));
        return Ok(explanation);
    }
    match derived {
        Some(Derived::Segment { rule, parent, .. }) => {
            explanation.rule = plan
                .project
                .config
                .segments
                .get(segment)
                .and_then(|s| s.rule.as_ref())
                .map(|r| r.get_ref().clone());
            let tree = node(plan, row, rule, depth)?;
            if parent.is_none() && (tree.truth == Truth::True) != member {
                explanation.note = Some(
                    "the rule was changed after the run: the tree shows the rule as it is now, membership as the run found it"
                        .into(),
                );
            }
            explanation.tree = Some(tree);
            if let Some(parent) = parent {
                if depth < MAX_DEPTH {
                    explanation.parent = Some(Box::new(explain_segment(plan, row, parent, depth + 1)?));
                }
                explanation.note =
                    Some(format!("a member only when also a member of its macro segment `{parent}`"));
            }
        }
        Some(Derived::Equals { column, value, .. }) => {
            let scheme = plan.derived.iter().find_map(|d| match d {
                Derived::Scheme { name, tiers, otherwise } if name == column => Some((tiers, otherwise)),
                _ => None,
            });
            match scheme {
                Some((tiers, otherwise)) => {
                    let mut tried = Vec::new();
                    let mut matched = otherwise.clone();
                    for (tier, rule) in tiers {
                        let tree = node(plan, row, rule, depth)?;
                        let hit = tree.truth == Truth::True;
                        tried.push(TierTried { tier: tier.clone(), tree });
                        if hit {
                            matched = tier.clone();
                            break;
                        }
                    }
                    explanation.note = Some(if &matched == value {
                        format!("`{column}` is `{matched}`: the first tier whose rule is true")
                    } else {
                        format!("`{column}` is `{matched}`, not `{value}`")
                    });
                    if matched == *otherwise {
                        explanation.note = Some(format!(
                            "no tier's rule is true, so `{column}` is the otherwise tier `{otherwise}`"
                        ));
                    }
                    explanation.scheme = Some(SchemeChoice { scheme: column.clone(), matched, tried });
                }
                None => {
                    // RFM's named segments: the segment follows the scores, which follow the
                    // raw values (every column `[rfm]` adds).
                    for name in segmenta_core::config::RFM_TRAITS {
                        if row.run.has_column(name) {
                            explanation.values.push(Operand {
                                text: name.to_string(),
                                value: cell(row.run.scalar(name, row.row)),
                                drivers: Vec::new(),
                            });
                        }
                    }
                    explanation.note = Some(format!("a member when `{column}` is `{value}`"));
                }
            }
        }
        Some(Derived::Static { .. }) => {
            explanation.note = Some(if member {
                "the entity's id is in the segment's static list".to_string()
            } else {
                "the entity's id is not in the segment's static list".to_string()
            });
        }
        Some(Derived::Movement { from, to, .. }) => {
            for end in [from, to].into_iter().flatten() {
                explanation.values.push(Operand {
                    text: format!("in_segment('{end}') now"),
                    value: Cell::Bool(row.run.is_member(end, row.row)),
                    drivers: Vec::new(),
                });
            }
            let from = from.as_deref().map_or(String::new(), |f| format!(" from `{f}`"));
            let to = to.as_deref().map_or(String::new(), |t| format!(" to `{t}`"));
            explanation.note = Some(format!(
                "a member when the entity moved{from}{to} since the previous snapshot (`segmenta diff` shows who moved)"
            ));
        }
        Some(Derived::Scheme { .. } | Derived::Score { .. }) | None => {
            return Err(Error::Internal(format!("segment `{segment}` has no definition in the plan")));
        }
    }
    Ok(explanation)
}

fn derived_name(derived: &Derived) -> Option<&str> {
    match derived {
        Derived::Segment { name, .. }
        | Derived::Static { name, .. }
        | Derived::Equals { name, .. }
        | Derived::Movement { name, .. } => Some(name),
        Derived::Scheme { .. } | Derived::Score { .. } => None,
    }
}

fn node(plan: &Plan, row: &EntityRow<'_>, expr: &TypedExpr, depth: usize) -> Result<ExplainNode> {
    let truth = segmenta_rules::eval::eval(expr, row)
        .map_err(|e| Error::Internal(format!("explaining `{}`: {e}", text(expr))))?;
    let mut explained = ExplainNode {
        text: text(expr),
        truth: Truth::of(truth),
        operands: Vec::new(),
        children: Vec::new(),
        segment: None,
    };
    match expr {
        TypedExpr::Or(a, b) | TypedExpr::And(a, b) => {
            explained.children = vec![node(plan, row, a, depth)?, node(plan, row, b, depth)?];
        }
        TypedExpr::Not(a) => explained.children = vec![node(plan, row, a, depth)?],
        TypedExpr::Compare { left, right, .. } => {
            explained.operands = [left, right].into_iter().filter_map(|v| operand(plan, v, row)).collect();
        }
        TypedExpr::InList { value, .. }
        | TypedExpr::Between { value, .. }
        | TypedExpr::IsNull { value, .. }
        | TypedExpr::StringMatch { value, .. }
        | TypedExpr::Truthy(value) => explained.operands = operand(plan, value, row).into_iter().collect(),
        TypedExpr::InSegment(name) => {
            if depth < MAX_DEPTH {
                explained.segment = Some(Box::new(explain_segment(plan, row, name, depth + 1)?));
            }
        }
    }
    Ok(explained)
}

fn operand(plan: &Plan, value: &TypedValue, row: &EntityRow<'_>) -> Option<Operand> {
    if matches!(value, TypedValue::Literal(_)) {
        return None;
    }
    let computed = segmenta_rules::eval::value(value, row).unwrap_or(Scalar::Null);
    let drivers = value.columns().iter().flat_map(|c| drivers(plan, &c.column, row)).collect();
    Some(Operand { text: value_text(value), value: cell(computed), drivers })
}

/// What drives the predictive trait `column` for the entity (nothing for other columns).
fn drivers(plan: &Plan, column: &str, row: &EntityRow<'_>) -> Vec<String> {
    let [risk, churn_drivers] = segmenta_core::config::CHURN_TRAITS;
    if column == risk {
        return match row.run.scalar(churn_drivers, row.row) {
            Scalar::String(text) => text.split("; ").filter(|d| !d.is_empty()).map(String::from).collect(),
            _ => Vec::new(),
        };
    }
    let Some(clv) = &plan.project.config.clv else {
        return Vec::new();
    };
    let names = clv.trait_names();
    // The four summaries are the models' inputs; the predictions follow from them.
    let (inputs, predictions) = names.split_at(4);
    if !predictions.iter().any(|p| p == column) {
        return Vec::new();
    }
    inputs
        .iter()
        .map(|name| {
            let shown = match cell(row.run.scalar(name, row.row)) {
                Cell::Null => "NULL".to_string(),
                Cell::Float(f) => format!("{f:.4}"),
                Cell::Int(i) => i.to_string(),
                Cell::Bool(b) => b.to_string(),
                Cell::Text(t) => t,
            };
            format!("{name} = {shown}")
        })
        .collect()
}

fn cell(scalar: Scalar) -> Cell {
    match scalar {
        Scalar::Null => Cell::Null,
        Scalar::String(s) => Cell::Text(s),
        Scalar::Int(i) => Cell::Int(i),
        Scalar::Float(f) => Cell::Float(f),
        Scalar::Bool(b) => Cell::Bool(b),
        Scalar::Date(days) => Cell::Text(segmenta_rules::format_date(days)),
        Scalar::Timestamp(micros) => Cell::Text(segmenta_rules::format_timestamp(micros)),
    }
}

/// The text of a rule node, in the rule language.
fn text(expr: &TypedExpr) -> String {
    fn side(expr: &TypedExpr, parent_is_and: bool) -> String {
        match expr {
            TypedExpr::Or(..) if parent_is_and => format!("({})", text(expr)),
            _ => text(expr),
        }
    }
    match expr {
        TypedExpr::Or(a, b) => format!("{} or {}", text(a), text(b)),
        TypedExpr::And(a, b) => format!("{} and {}", side(a, true), side(b, true)),
        TypedExpr::Not(a) => match a.as_ref() {
            TypedExpr::Or(..) | TypedExpr::And(..) => format!("not ({})", text(a)),
            _ => format!("not {}", text(a)),
        },
        TypedExpr::Compare { left, op, right } => {
            let op = match op {
                CmpOp::Eq => "=",
                CmpOp::NotEq => "!=",
                CmpOp::Lt => "<",
                CmpOp::LtEq => "<=",
                CmpOp::Gt => ">",
                CmpOp::GtEq => ">=",
            };
            format!("{} {op} {}", value_text(left), value_text(right))
        }
        TypedExpr::InList { value, list, negated } => {
            let items: Vec<String> = list.iter().map(Scalar::to_string).collect();
            format!("{} {}in ({})", value_text(value), if *negated { "not " } else { "" }, items.join(", "))
        }
        TypedExpr::Between { value, low, high, negated } => format!(
            "{} {}between {} and {}",
            value_text(value),
            if *negated { "not " } else { "" },
            low,
            high
        ),
        TypedExpr::IsNull { value, negated } => {
            format!("{} is {}null", value_text(value), if *negated { "not " } else { "" })
        }
        TypedExpr::StringMatch { value, op, pattern, negated } => {
            let op = match op {
                StringOp::Contains => "contains",
                StringOp::StartsWith => "starts_with",
                StringOp::EndsWith => "ends_with",
            };
            let not = if *negated { "not " } else { "" };
            format!("{} {not}{op} {}", value_text(value), Scalar::String(pattern.clone()))
        }
        TypedExpr::InSegment(name) => format!("in_segment({})", Scalar::String(name.clone())),
        TypedExpr::Truthy(value) => value_text(value),
    }
}

fn value_text(value: &TypedValue) -> String {
    match value {
        TypedValue::Column { column, .. } => {
            match column.column.strip_prefix(segmenta_core::hidden::PARENT_PREFIX) {
                Some(name) => format!("parent.{name}"),
                None => column.column.clone(),
            }
        }
        TypedValue::Literal(scalar) => scalar.to_string(),
        TypedValue::Apply { text, .. } => text.clone(),
    }
}
