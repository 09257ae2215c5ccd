//! Properties: the parsers never panic on any input; printing a parsed rule and parsing it again
//! gives the same tree (spans aside); resolution and evaluation never panic.

use proptest::prelude::*;
use segmenta_core::ValueType;
use segmenta_rules::ast::{ColumnInfo, ColumnSource, Ident, Scalar};
use segmenta_rules::eval::{Row, eval};
use segmenta_rules::{AttributeCatalog, parse_rule, parse_trait, resolve_rule};

/// Tokens rules are made of, including broken ones, so random strings reach deep into the parser.
const TOKENS: &[&str] = &[
    "a",
    "b",
    "s",
    "n",
    "f",
    "d",
    "t",
    "parent.x",
    "`odd name`",
    "`",
    "and",
    "OR",
    "not",
    "in",
    "not in",
    "between",
    "is",
    "null",
    "is not null",
    "contains",
    "starts_with",
    "ends_with",
    "in_segment",
    "(",
    ")",
    ",",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "&&",
    "!",
    "'x'",
    "'it''s'",
    "\"q\"",
    "'",
    "1",
    "-2",
    "2.5",
    "1e3",
    "9e999",
    "99999999999999999999",
    "true",
    "FALSE",
    "DATE '2024-01-31'",
    "DATE '2024-02-30'",
    "TIMESTAMP '2024-01-01T10:00:00Z'",
    "TIMESTAMP '2024-01-01 10:00:00'",
    "date",
    "count",
    "count()",
    "sum(n)",
    "where",
    "within",
    "90d",
    "0d",
    "12w",
    "36h",
    "+",
    "-",
    "*",
    "/",
    "round(",
    "abs",
    "coalesce(",
    "-9223372036854775808",
    "é",
    "\u{0}",
    " ",
    "\n",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..40).prop_map(|t| t.join(" "))
}

/// Numeric values with arithmetic and functions, written with and without parentheses.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("n".to_string()),
        Just("f".to_string()),
        (-100i64..100).prop_map(|v| v.to_string()),
        (-8i64..8).prop_map(|q| format!("{:?}", q as f64 / 4.0)),
    ];
    leaf.prop_recursive(3, 10, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/"]), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("abs({a})")),
            (inner.clone(), -3i32..3).prop_map(|(a, d)| format!("ROUND({a}, {d})")),
            prop::collection::vec(inner, 1..4).prop_map(|l| format!("coalesce({})", l.join(", "))),
        ]
    })
}

/// Valid rule text over the test catalog's columns.
fn valid_rule() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (value(), prop::sample::select(vec!["=", "<", ">="]), value())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (value(), -5i64..5).prop_map(|(a, k)| format!("({a}) between {k} and 7.5")),
        (
            prop::sample::select(vec!["s", "`odd name`", "parent.x"]),
            prop::sample::select(vec!["=", "!=", "<", ">="]),
            "[a-z']{0,4}"
        )
            .prop_map(|(c, op, v)| format!("{c} {op} '{}'", v.replace('\'', "''"))),
        (
            prop::sample::select(vec!["n", "f"]),
            prop::sample::select(vec!["=", "<>", "<=", ">"]),
            -100i64..100
        )
            .prop_map(|(c, op, v)| format!("{c} {op} {v}")),
        (-100i64..100, -100i64..100).prop_map(|(a, b)| format!("f between {a} and {}.5", b)),
        prop::collection::vec(-5i64..5, 1..4).prop_map(|l| format!(
            "n not in ({})",
            l.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        )),
        Just("d >= DATE '2024-01-31'".to_string()),
        Just("t < TIMESTAMP '2024-01-01T10:00:00.250Z'".to_string()),
        Just("d = t".to_string()),
        Just("s is not null".to_string()),
        Just("s not contains 'a'".to_string()),
        Just("b".to_string()),
        Just("in_segment('seg')".to_string()),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or {b}")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.prop_map(|a| format!("NOT {a}")),
        ]
    })
}

/// Debug output of a tree without its spans.
fn without_spans(debug: &str) -> String {
    let mut out = String::new();
    let mut rest = debug;
    while let Some(i) = rest.find("Span {") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map_or(rest.len(), |j| i + j + 1);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

struct Catalog;

impl AttributeCatalog for Catalog {
    fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
        let ty = match (ident.qualifier.as_deref(), ident.name.as_str()) {
            (None, "s") | (None, "odd name") | (Some("parent"), "x") => ValueType::String,
            (None, "n") => ValueType::Int,
            (None, "f") => ValueType::Float,
            (None, "b") => ValueType::Bool,
            (None, "d") => ValueType::Date,
            (None, "t") => ValueType::Timestamp,
            _ => return None,
        };
        let column = match &ident.qualifier {
            Some(q) => format!("{q}.{}", ident.name),
            None => ident.name.clone(),
        };
        Some(ColumnInfo { column, ty, source: ColumnSource::Attribute })
    }

    fn names(&self) -> Vec<String> {
        ["s", "odd name", "parent.x", "n", "f", "b", "d", "t"].map(String::from).to_vec()
    }

    fn has_segment(&self, name: &str) -> bool {
        name == "seg"
    }

    fn segment_names(&self) -> Vec<String> {
        vec!["seg".into()]
    }

    fn allows_segments(&self) -> bool {
        true
    }
}

struct Values(Vec<Option<i64>>);

impl Row for Values {
    fn get(&self, column: &str) -> Scalar {
        let at = |i: usize| self.0.get(i).copied().flatten();
        let value = match column {
            "s" | "odd name" | "parent.x" => at(0).map(|v| Scalar::String(format!("{}", v % 3))),
            "n" => at(1).map(Scalar::Int),
            "f" => at(2).map(|v| Scalar::Float(v as f64 / 2.0)),
            "b" => at(3).map(|v| Scalar::Bool(v % 2 == 0)),
            "d" => at(4).map(|v| Scalar::Date(19_700 + v as i32)),
            "t" => at(5).map(|v| Scalar::Timestamp(v * 3_600_000_000)),
            _ => None,
        };
        value.unwrap_or(Scalar::Null)
    }

    fn in_segment(&self, _segment: &str) -> bool {
        self.0.first().copied().flatten().is_some()
    }
}

proptest! {
    #[test]
    fn parsers_never_panic_on_any_string(text in any::<String>()) {
        let _ = parse_rule(&text);
        let _ = parse_trait(&text);
    }

    #[test]
    fn parsers_never_panic_on_token_soup(text in token_soup()) {
        if let Ok(expr) = parse_rule(&text) {
            let _ = resolve_rule(&expr, &Catalog);
        }
        let _ = parse_trait(&text);
        let trait_text = format!("count() where {text}");
        let _ = parse_trait(&trait_text);
        if let Ok(value) = segmenta_rules::parse_derived(&text) {
            let _ = segmenta_rules::resolve_derived(&value, &Catalog);
        }
    }

    #[test]
    fn print_then_parse_is_the_identity(text in valid_rule()) {
        let parsed = parse_rule(&text).map_err(|d| TestCaseError::fail(format!("{text}: {d:?}")))?;
        let printed = parsed.to_string();
        let reparsed = parse_rule(&printed).map_err(|d| TestCaseError::fail(format!("{printed}: {d:?}")))?;
        prop_assert_eq!(without_spans(&format!("{parsed:?}")), without_spans(&format!("{reparsed:?}")), "{} -> {}", text, printed);
        prop_assert_eq!(reparsed.to_string(), printed);
    }

    #[test]
    fn valid_rules_resolve_and_evaluate_without_panics(
        text in valid_rule(),
        values in prop::collection::vec(proptest::option::of(-50i64..50), 6),
    ) {
        let parsed = parse_rule(&text).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        let typed = resolve_rule(&parsed, &Catalog).map_err(|d| TestCaseError::fail(format!("{text}: {d:?}")))?;
        let _ = eval(&typed, &Values(values));
    }
}
