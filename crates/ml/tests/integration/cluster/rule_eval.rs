//! Recomputes a discovered rule's value from its text with the rule language itself
//! (`segmenta_rules`: parser, resolution against the feature columns, the reference
//! three-valued evaluator), over the original values.

use segmenta_core::ValueType;
use segmenta_ml::cluster::FeatureColumn;
use segmenta_rules::AttributeCatalog;
use segmenta_rules::ast::{ColumnInfo, ColumnSource, Ident, Scalar};
use segmenta_rules::eval::Row;

/// The feature columns as the attributes rules read.
struct Features<'a>(&'a [FeatureColumn]);

impl AttributeCatalog for Features<'_> {
    fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
        let column = self.0.iter().find(|c| ident.qualifier.is_none() && c.name() == ident.name)?;
        let ty = match column {
            FeatureColumn::Numeric { .. } => ValueType::Float,
            FeatureColumn::Categorical { .. } => ValueType::String,
        };
        Some(ColumnInfo { column: ident.name.clone(), ty, source: ColumnSource::Attribute })
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|c| c.name().to_string()).collect()
    }
}

/// One entity of the feature columns.
struct Entity<'a>(&'a [FeatureColumn], usize);

impl Row for Entity<'_> {
    fn get(&self, column: &str) -> Scalar {
        match self.0.iter().find(|c| c.name() == column) {
            Some(FeatureColumn::Numeric { values, .. }) => values[self.1].map_or(Scalar::Null, Scalar::Float),
            Some(FeatureColumn::Categorical { values, .. }) => {
                values[self.1].clone().map_or(Scalar::Null, Scalar::String)
            }
            None => panic!("no feature column `{column}`"),
        }
    }

    fn in_segment(&self, segment: &str) -> bool {
        panic!("a discovered rule references segment `{segment}`")
    }
}

/// The rule's three-valued value for entity `row`.
pub fn evaluate(rule: &str, columns: &[FeatureColumn], row: usize) -> Option<bool> {
    let expr = segmenta_rules::parse_rule(rule).unwrap_or_else(|e| panic!("`{rule}` does not parse: {e:?}"));
    let typed = segmenta_rules::resolve_rule(&expr, &Features(columns))
        .unwrap_or_else(|e| panic!("`{rule}` does not resolve: {e:?}"));
    segmenta_rules::eval::eval(&typed, &Entity(columns, row))
        .expect("discovered rules compute nothing out of range")
}

/// Share of entities on which "the rule is TRUE" and "the label is `id`" agree.
pub fn fidelity(rule: &str, columns: &[FeatureColumn], labels: &[u32], id: u32) -> f64 {
    let agree = labels
        .iter()
        .enumerate()
        .filter(|(row, label)| (evaluate(rule, columns, *row) == Some(true)) == (**label == id))
        .count();
    agree as f64 / labels.len() as f64
}

#[test]
fn the_evaluator_follows_three_valued_logic() {
    let columns = vec![
        FeatureColumn::Numeric { name: "x".into(), values: vec![Some(1.0), None] },
        FeatureColumn::Categorical { name: "my plan".into(), values: vec![None, Some("it's".into())] },
    ];
    assert_eq!(evaluate("x > 0", &columns, 1), None);
    assert_eq!(evaluate("not x > 0", &columns, 1), None);
    assert_eq!(evaluate("x > 0 or x is null", &columns, 1), Some(true));
    assert_eq!(evaluate("`my plan` in ('it''s', 'b')", &columns, 1), Some(true));
    assert_eq!(evaluate("`my plan` not in ('a')", &columns, 0), None);
    assert_eq!(evaluate("(x <= 1 and `my plan` is null) or (false)", &columns, 0), Some(true));
    assert_eq!(evaluate("x > -1e-3", &columns, 0), Some(true));
}
