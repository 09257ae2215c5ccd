//! Hints from the data about rules that look right but match nothing: a string compared with a
//! value the data never holds, where the data does hold it with other letter case (`region =
//! 'emea'` against `EMEA`). Strings compare case-sensitively, as in SQL; the hint says which
//! spelling the data uses. Computed once per run over the project entity's attribute columns.

use std::collections::{BTreeMap, HashMap, HashSet};

use segmenta_core::ValueType;
use segmenta_query::{Derived, EntityData};
use segmenta_rules::ast::{CmpOp, ColumnSource, Scalar, TypedExpr, TypedValue};
use segmenta_store::formats::Warning;

use crate::error::Result;
use crate::keys::text_set;

/// (what holds the rule, attribute column, compared text), in rule order.
type Literal = (String, String, String);

fn literals_of(expr: &TypedExpr, owner: &str, out: &mut Vec<Literal>) {
    let attribute = |value: &TypedValue| match value {
        TypedValue::Column { column, .. }
            if column.source == ColumnSource::Attribute && column.ty == ValueType::String =>
        {
            Some(column.column.clone())
        }
        _ => None,
    };
    match expr {
        TypedExpr::Or(a, b) | TypedExpr::And(a, b) => {
            literals_of(a, owner, out);
            literals_of(b, owner, out);
        }
        TypedExpr::Not(a) => literals_of(a, owner, out),
        TypedExpr::Compare { left, op: CmpOp::Eq | CmpOp::NotEq, right } => {
            for (column, literal) in [(left, right), (right, left)] {
                if let (Some(column), TypedValue::Literal(Scalar::String(text))) =
                    (attribute(column), literal)
                {
                    out.push((owner.to_string(), column, text.clone()));
                }
            }
        }
        TypedExpr::InList { value, list, .. } => {
            if let Some(column) = attribute(value) {
                for item in list {
                    if let Scalar::String(text) = item {
                        out.push((owner.to_string(), column.clone(), text.clone()));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Warnings (code `case_mismatch`) for string literals of the rules that no row of `entity`
/// holds but some row holds in other letter case.
pub(crate) fn case_warnings(derived: &[Derived], entity: &EntityData) -> Result<Vec<Warning>> {
    let mut literals = Vec::new();
    for item in derived {
        match item {
            Derived::Segment { name, rule, .. } => {
                literals_of(rule, &format!("segment `{name}`"), &mut literals)
            }
            Derived::Scheme { name, tiers, .. } => {
                for (tier, rule) in tiers {
                    literals_of(rule, &format!("scheme `{name}` tier `{tier}`"), &mut literals);
                }
            }
            Derived::Score { name, rules, .. } => {
                for (rule, _) in rules {
                    literals_of(rule, &format!("score `{name}`"), &mut literals);
                }
            }
            _ => {}
        }
    }
    if literals.is_empty() {
        return Ok(Vec::new());
    }
    // The distinct values of each column a literal is compared with.
    let mut values: HashMap<&str, HashSet<String>> = HashMap::new();
    for (_, column, _) in &literals {
        if !values.contains_key(column.as_str()) {
            values.insert(column, text_set(&entity.table.batches, column)?);
        }
    }
    let mut warnings = BTreeMap::new();
    for (owner, column, literal) in &literals {
        let Some(seen) = values.get(column.as_str()) else { continue };
        if seen.contains(literal) {
            continue;
        }
        let wanted = literal.to_lowercase();
        let mut spellings: Vec<&String> = seen.iter().filter(|v| v.to_lowercase() == wanted).collect();
        spellings.sort();
        let Some(spelling) = spellings.first() else { continue };
        warnings.entry((owner.clone(), column.clone(), literal.clone())).or_insert_with(|| Warning {
            code: "case_mismatch".into(),
            message: format!(
                "{owner} compares `{column}` with '{literal}', which no row of {} holds; it holds '{spelling}'",
                entity.source
            ),
            hint: format!("strings compare case-sensitively: write '{spelling}'"),
        });
    }
    Ok(warnings.into_values().collect())
}
