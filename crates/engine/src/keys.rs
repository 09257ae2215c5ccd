//! Keys that match nothing, said out loud: events whose key is no entity's, child rows whose
//! link names no parent, hierarchy parents that are not rows of their table, and events
//! without a key. Unmatched keys are warnings above a share of the rows (`[project]
//! max_unknown_share`, default 1%; hierarchy parents at any count), errors with `--strict`
//! or `[project] strict`; events without a key are bad rows (an error, or rejects with
//! `--on-bad-rows reject`).

use std::collections::{BTreeSet, HashSet};

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use segmenta_query::ingest::{BadRows, RejectedRow};
use segmenta_query::{EntityData, EventCounts, EventKeys};
use segmenta_store::formats::Warning;

use crate::error::{Error, Result};

/// The number of example keys a warning names.
const SAMPLE: usize = 5;

/// How unmatched keys are judged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyPolicy {
    /// The share of rows above which unmatched keys are reported.
    pub max_unknown_share: f64,
    /// Reported keys are an error.
    pub strict: bool,
}

impl KeyPolicy {
    /// The warnings, or with `strict` an error holding them.
    pub(crate) fn judge(&self, warnings: Vec<Warning>) -> Result<Vec<Warning>> {
        if self.strict && !warnings.is_empty() {
            return Err(Error::UnknownKeys { warnings });
        }
        Ok(warnings)
    }

    fn above(&self, unknown: u64, total: u64) -> bool {
        unknown > 0 && total > 0 && unknown as f64 / total as f64 > self.max_unknown_share
    }
}

fn texts(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(arrow::compute::cast(array, &DataType::Utf8).map_err(segmenta_query::Error::from)?)
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::Internal(format!("column `{name}` missing from loaded data")))
}

/// The keys of an entity's table, as text.
fn key_set(entity: &EntityData) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    for batch in &entity.table.batches {
        let text = texts(column(batch, &entity.key)?)?;
        keys.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(keys)
}

/// Values of `name` in `entity`'s rows that are not in `keys`: (non-NULL values, unknown values,
/// the smallest unknown values).
fn unmatched(entity: &EntityData, name: &str, keys: &HashSet<String>) -> Result<(u64, u64, Vec<String>)> {
    let (mut present, mut unknown) = (0u64, 0u64);
    let mut sample = BTreeSet::new();
    for batch in &entity.table.batches {
        let text = texts(column(batch, name)?)?;
        for value in text.as_string::<i32>().iter().flatten() {
            present += 1;
            if !keys.contains(value) {
                unknown += 1;
                sample.insert(value.to_string());
                if sample.len() > SAMPLE {
                    sample.pop_last();
                }
            }
        }
    }
    Ok((present, unknown, sample.into_iter().collect()))
}

fn examples(sample: &[String], unknown: u64) -> String {
    let more = if unknown > sample.len() as u64 { ", ..." } else { "" };
    format!("{}{more}", sample.join(", "))
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// Child rows whose link names no parent row, and hierarchy parents that are not rows of their
/// own table.
pub(crate) fn link_warnings(entities: &[EntityData], policy: &KeyPolicy) -> Result<Vec<Warning>> {
    let mut warnings = Vec::new();
    for entity in entities {
        if let Some(link) = &entity.parent
            && let Some(parent) = entities.iter().find(|e| e.name == link.entity)
        {
            let (present, unknown, sample) = unmatched(entity, &link.column, &key_set(parent)?)?;
            if policy.above(unknown, present) {
                warnings.push(Warning {
                    code: "unknown_parent_keys".into(),
                    message: format!(
                        "{unknown} of {present} rows of {} ({:.1}%) link to a `{}` that {} does not have: `{}` = {}",
                        entity.source,
                        percent(unknown, present),
                        parent.name,
                        parent.source,
                        link.column,
                        examples(&sample, unknown)
                    ),
                    hint: format!(
                        "rollups and parent columns leave these rows out; check that `{}` of {} holds the keys in `{}` of {}",
                        link.column, entity.source, parent.key, parent.source
                    ),
                });
            }
        }
        if let Some(hierarchy) = &entity.hierarchy {
            let (_, unknown, sample) = unmatched(entity, hierarchy, &key_set(entity)?)?;
            if unknown > 0 {
                warnings.push(Warning {
                    code: "unknown_hierarchy_parents".into(),
                    message: format!(
                        "{unknown} rows of {} name a parent in `{hierarchy}` that is not a row of the file: {}",
                        entity.source,
                        examples(&sample, unknown)
                    ),
                    hint: format!(
                        "these rows count as roots of the hierarchy; add the parents to {} or clear `{hierarchy}`",
                        entity.source
                    ),
                });
            }
        }
    }
    Ok(warnings)
}

/// Events before the as-of instant whose key is no entity's, as a warning above the share;
/// `owner` is the entity's file and key column.
pub(crate) fn event_warning(
    counts: &EventCounts,
    keys: &EventKeys,
    file: &str,
    column: &str,
    owner: (&str, &str),
    policy: &KeyPolicy,
) -> Option<Warning> {
    let (owner_file, owner_key) = owner;
    let unknown = counts.ignored_unknown_entity;
    let total = unknown + counts.used;
    if !policy.above(unknown, total) {
        return None;
    }
    Some(Warning {
        code: "unknown_event_keys".into(),
        message: format!(
            "{unknown} of {total} events before the as-of instant ({:.1}%) have a `{column}` that is no key of {}: {}",
            percent(unknown, total),
            owner_file,
            examples(&keys.unknown_sample, unknown)
        ),
        hint: format!(
            "these events count for no one; check that `{column}` of {file} holds the same ids as `{}` of {} (same spelling, no leading zeros lost)",
            owner_key, owner_file
        ),
    })
}

/// Events without a key: an error at the first in strict mode, else rejected rows.
pub(crate) fn missing_event_keys(
    keys: &EventKeys,
    file: &str,
    column: &str,
    bad_rows: BadRows,
) -> Result<Vec<RejectedRow>> {
    let reason = |row: u64| format!("column `{column}`: the event has no key (data row {row})");
    match (keys.missing_key_rows.first(), bad_rows) {
        (None, _) => Ok(Vec::new()),
        (Some(&row), BadRows::Strict) => Err(Error::Query(segmenta_query::Error::bad_input(
            segmenta_query::Location { file: file.to_string(), line: None, column: Some(column.to_string()) },
            format!(
                "the event has no key (data row {row}; {} events have none)",
                keys.missing_key_rows.len()
            ),
            Some("every event needs its entity's key; fix the file or run with --on-bad-rows reject".into()),
        ))),
        (Some(_), BadRows::Reject) => Ok(keys
            .missing_key_rows
            .iter()
            .map(|&row| RejectedRow { line: row, reason: reason(row), raw: String::new() })
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_strictly_above_the_threshold() {
        let policy = KeyPolicy { max_unknown_share: 0.01, strict: false };
        assert!(!policy.above(1, 100), "exactly 1% is not above 1%");
        assert!(policy.above(2, 100));
        assert!(!policy.above(0, 0));
        let none = KeyPolicy { max_unknown_share: 0.0, strict: false };
        assert!(none.above(1, 1_000_000), "a zero share reports every unknown key");
    }

    #[test]
    fn strict_turns_warnings_into_an_error() {
        let warning = Warning { code: "unknown_event_keys".into(), message: "m".into(), hint: "h".into() };
        let strict = KeyPolicy { max_unknown_share: 0.01, strict: true };
        assert!(matches!(strict.judge(vec![warning.clone()]), Err(Error::UnknownKeys { .. })));
        assert_eq!(strict.judge(Vec::new()).expect("nothing to report").len(), 0);
        let lenient = KeyPolicy { strict: false, ..strict };
        assert_eq!(lenient.judge(vec![warning]).expect("warns").len(), 1);
    }
}
