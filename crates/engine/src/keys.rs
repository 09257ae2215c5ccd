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

    pub(crate) fn above(&self, unknown: u64, total: u64) -> bool {
        unknown > 0 && total > 0 && unknown as f64 / total as f64 > self.max_unknown_share
    }
}

/// A column of a batch as text.
pub(crate) fn column_text(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Internal(format!("column `{name}` missing from loaded data")))?;
    Ok(arrow::compute::cast(column, &DataType::Utf8).map_err(segmenta_query::Error::from)?)
}

/// The non-NULL values of a column, as text.
pub(crate) fn text_set(batches: &[RecordBatch], name: &str) -> Result<HashSet<String>> {
    let mut values = HashSet::new();
    for batch in batches {
        let text = column_text(batch, name)?;
        values.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(values)
}

/// Values looked up in a set of keys: how many, how many matched nothing, and the smallest of
/// those (the same examples whatever the order of the rows).
#[derive(Debug, Default)]
pub(crate) struct Unmatched {
    /// Non-NULL values seen.
    pub present: u64,
    /// Values that matched no key.
    pub unknown: u64,
    sample: BTreeSet<String>,
}

impl Unmatched {
    /// Counts `value`, which `known` says matched a key.
    pub(crate) fn observe(&mut self, value: &str, known: bool) {
        self.present += 1;
        if !known {
            self.unknown += 1;
            if self.sample.len() < SAMPLE || self.sample.last().is_some_and(|last| value < last.as_str()) {
                self.sample.insert(value.to_string());
                if self.sample.len() > SAMPLE {
                    self.sample.pop_last();
                }
            }
        }
    }

    /// Every non-NULL value of column `name` of `batches`, looked up in `keys`.
    pub(crate) fn of(batches: &[RecordBatch], name: &str, keys: &HashSet<String>) -> Result<Unmatched> {
        let mut unmatched = Unmatched::default();
        for batch in batches {
            let text = column_text(batch, name)?;
            for value in text.as_string::<i32>().iter().flatten() {
                unmatched.observe(value, keys.contains(value));
            }
        }
        Ok(unmatched)
    }

    /// The unmatched share in percent.
    pub(crate) fn percent(&self) -> f64 {
        if self.present == 0 { 0.0 } else { self.unknown as f64 * 100.0 / self.present as f64 }
    }

    /// The examples, `, ...` when there are more.
    pub(crate) fn examples(&self) -> String {
        let shown: Vec<String> = self.sample.iter().cloned().collect();
        examples(&shown, self.unknown)
    }
}

/// Example values, `, ...` when `unknown` counts more of them.
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
            let parent_keys = text_set(&parent.table.batches, &parent.key)?;
            let found = Unmatched::of(&entity.table.batches, &link.column, &parent_keys)?;
            if policy.above(found.unknown, found.present) {
                warnings.push(Warning {
                    code: "unknown_parent_keys".into(),
                    message: format!(
                        "{} of {} rows of {} ({:.1}%) link to a `{}` that {} does not have: `{}` = {}",
                        found.unknown,
                        found.present,
                        entity.source,
                        found.percent(),
                        parent.name,
                        parent.source,
                        link.column,
                        found.examples()
                    ),
                    hint: format!(
                        "rollups and parent columns leave these rows out; check that `{}` of {} holds the keys in `{}` of {}",
                        link.column, entity.source, parent.key, parent.source
                    ),
                });
            }
        }
        if let Some(hierarchy) = &entity.hierarchy {
            let own_keys = text_set(&entity.table.batches, &entity.key)?;
            let found = Unmatched::of(&entity.table.batches, hierarchy, &own_keys)?;
            if found.unknown > 0 {
                warnings.push(Warning {
                    code: "unknown_hierarchy_parents".into(),
                    message: format!(
                        "{} rows of {} name a parent in `{hierarchy}` that is not a row of the file: {}",
                        found.unknown,
                        entity.source,
                        found.examples()
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
