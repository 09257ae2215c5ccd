//! `preview`: the size of an ad-hoc rule against the latest run, without scanning events: the
//! rule is resolved like a segment's and evaluated on the run's evaluation table
//! (`table.parquet`), reading only the columns it needs.

use segmenta_store::{Store, files};

use crate::error::{Error, Result, RuleProblem};
use crate::project::Project;
use crate::validate::validate;

/// What a preview found.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Entities for which the rule is TRUE.
    pub size: u64,
    /// Entities in the run.
    pub entities: u64,
    /// `size / entities` (0 without entities).
    pub share: f64,
    /// The first few members, by id.
    pub sample: Vec<String>,
    /// The as-of instant of the run previewed.
    pub as_of: String,
}

/// Parses and resolves an ad-hoc `rule` against a validated project's rules catalog; its
/// problems located in the rule text (a preview's, a rule saved over HTTP).
/// `shown_as` stands for the file name in the rendered problems (`<preview>`).
pub(crate) fn resolve_ad_hoc(
    plan: &crate::plan::Plan,
    rule: &str,
    shown_as: &str,
) -> Result<segmenta_rules::ast::TypedExpr> {
    let parsed = segmenta_rules::parse_rule(rule);
    let typed = parsed.and_then(|expr| segmenta_rules::resolve_rule(&expr, &plan.rules_catalog));
    typed.map_err(|diagnostics| Error::Rules {
        path: std::path::PathBuf::from(shown_as),
        problems: diagnostics
            .into_iter()
            .map(|diagnostic| RuleProblem {
                source: "the rule".into(),
                text: rule.to_string(),
                diagnostic,
                file_position: None,
            })
            .collect(),
    })
}

/// Evaluates `rule` (text in the rule language) against the latest run of `project`.
pub fn preview(project: &Project, rule: &str, sample: usize) -> Result<Preview> {
    let validated = validate(project)?;
    let typed = resolve_ad_hoc(&validated, rule, "<preview>")?;
    let store = Store::new(project.store_dir());
    let latest = store.latest()?;
    let summary = segmenta_store::read_summary(&latest)?;
    let counted = segmenta_query::preview_file(&latest.join(files::TABLE), &typed, sample)?;
    let (size, entities, sample) = (counted.size, counted.entities, counted.sample);
    Ok(Preview {
        size,
        entities,
        share: if entities == 0 { 0.0 } else { size as f64 / entities as f64 },
        sample,
        as_of: summary["as_of"].as_str().unwrap_or_default().to_string(),
    })
}
