//! Property test: on random small tables and random well-typed rules, the DataFusion evaluation
//! gives exactly the members that the reference evaluator (`segmenta_rules::eval`, a direct
//! reading of SQL three-valued logic) gives, row by row.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use segmenta_engine::{BadRows, Derived};
use segmenta_rules::ast::Scalar;
use segmenta_rules::eval::{Row, eval};

use crate::support::{TempProject, memberships};

const STRINGS: [&str; 6] = ["a", "b", "B", "ab", "ba", "a b"];
const DATES: [(&str, i32); 3] = [("2024-01-01", 19723), ("2024-01-02", 19724), ("2024-01-03", 19725)];
const INSTANTS: [(&str, i64); 3] = [
    ("2024-01-01T23:59:59Z", 1_704_153_599_000_000),
    ("2024-01-02T00:00:00Z", 1_704_153_600_000_000),
    ("2024-01-02T12:00:00+02:00", 1_704_189_600_000_000),
];

#[derive(Debug, Clone)]
struct Record {
    s: Option<usize>,
    i: Option<i64>,
    f: Option<i64>, // quarters
    b: Option<bool>,
    d: Option<usize>,
    t: Option<usize>,
}

fn record() -> impl Strategy<Value = Record> {
    (
        proptest::option::of(0..STRINGS.len()),
        proptest::option::of(-3i64..=3),
        proptest::option::of(-4i64..=4),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0..DATES.len()),
        proptest::option::of(0..INSTANTS.len()),
    )
        .prop_map(|(s, i, f, b, d, t)| Record { s, i, f, b, d, t })
}

fn cmp() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["=", "!=", "<>", "<", "<=", ">", ">="])
}

fn string_lit() -> impl Strategy<Value = String> {
    prop::sample::select(STRINGS.to_vec()).prop_map(|s| format!("'{s}'"))
}

fn number_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        (-3i64..=3).prop_map(|v| v.to_string()),
        (-4i64..=4).prop_map(|q| format!("{}", q as f64 / 4.0))
    ]
}

fn temporal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("d".to_string()),
        Just("t".to_string()),
        prop::sample::select(DATES.to_vec()).prop_map(|(d, _)| format!("DATE '{d}'")),
        prop::sample::select(INSTANTS.to_vec()).prop_map(|(t, _)| format!("TIMESTAMP '{t}'")),
    ]
}

/// A random numeric value: arithmetic and functions over `i`, `f` and constants (products take
/// a constant side: the values stay small).
fn arithmetic() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![Just("i".to_string()), Just("f".to_string()), number_lit()];
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(vec!["+", "-", "/"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            (inner.clone(), number_lit()).prop_map(|(a, k)| format!("({a}) * {k}")),
            (inner.clone(), -2i32..=2).prop_map(|(a, d)| format!("round({a}, {d})")),
            inner.clone().prop_map(|a| format!("abs({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            (inner.clone(), number_lit()).prop_map(|(a, k)| format!("coalesce({a}, {k})")),
        ]
    })
}

/// A random well-typed predicate; `@` stands for an `in_segment` reference filled in later.
fn predicate() -> impl Strategy<Value = String> {
    let numeric = prop_oneof![Just("i".to_string()), Just("f".to_string()), number_lit()];
    prop_oneof![
        (arithmetic(), cmp(), arithmetic()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (arithmetic(), any::<bool>(), number_lit(), number_lit())
            .prop_map(|(v, n, a, b)| format!("{v} {}between {a} and {b}", if n { "not " } else { "" })),
        (arithmetic(), any::<bool>(), prop::collection::vec(number_lit(), 1..3))
            .prop_map(|(v, n, l)| format!("{v} {}in ({})", if n { "not " } else { "" }, l.join(", "))),
        (prop_oneof![Just("s"), Just("'x'")], string_lit())
            .prop_map(|(a, b)| format!("coalesce(s, {a}) contains {b}")),
        (
            prop_oneof![Just("s".to_string()), string_lit()],
            cmp(),
            prop_oneof![Just("s".to_string()), string_lit()]
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (numeric.clone(), cmp(), numeric.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (temporal(), cmp(), temporal()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (
            prop_oneof![Just("b"), Just("true"), Just("false")],
            prop::sample::select(vec!["=", "!="]),
            prop_oneof![Just("b"), Just("true")]
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (any::<bool>(), prop::collection::vec(string_lit(), 1..3)).prop_map(|(n, l)| format!(
            "s {}in ({})",
            if n { "not " } else { "" },
            l.join(", ")
        )),
        (any::<bool>(), prop::collection::vec(number_lit(), 1..3)).prop_map(|(n, l)| format!(
            "i {}in ({})",
            if n { "not " } else { "" },
            l.join(", ")
        )),
        (any::<bool>(), number_lit(), number_lit())
            .prop_map(|(n, a, b)| format!("f {}between {a} and {b}", if n { "not " } else { "" })),
        (any::<bool>(), prop::sample::select(vec!["s", "i", "f", "b", "d", "t"]))
            .prop_map(|(n, c)| format!("{c} is {}null", if n { "not " } else { "" })),
        (any::<bool>(), prop::sample::select(vec!["contains", "starts_with", "ends_with"]), string_lit())
            .prop_map(|(n, op, s)| format!("s {}{op} {s}", if n { "not " } else { "" })),
        Just("b".to_string()),
        Just("@".to_string()),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    predicate().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

struct RecordRow<'a> {
    record: &'a Record,
    segments: &'a HashMap<String, bool>,
}

impl Row for RecordRow<'_> {
    fn get(&self, column: &str) -> Scalar {
        let r = self.record;
        let value = match column {
            "s" => r.s.map(|i| Scalar::String(STRINGS[i].to_string())),
            "i" => r.i.map(Scalar::Int),
            "f" => r.f.map(|q| Scalar::Float(q as f64 / 4.0)),
            "b" => r.b.map(Scalar::Bool),
            "d" => r.d.map(|i| Scalar::Date(DATES[i].1)),
            "t" => r.t.map(|i| Scalar::Timestamp(INSTANTS[i].1)),
            _ => None,
        };
        value.unwrap_or(Scalar::Null)
    }

    fn in_segment(&self, segment: &str) -> bool {
        self.segments.get(segment).copied().unwrap_or(false)
    }
}

fn csv(records: &[Record]) -> String {
    let mut out = String::from("id,s,i,f,b,d,t\n");
    for (n, r) in records.iter().enumerate() {
        let cell = |v: Option<String>| v.unwrap_or_default();
        out.push_str(&format!(
            "E{n},{},{},{},{},{},{}\n",
            cell(r.s.map(|i| STRINGS[i].to_string())),
            cell(r.i.map(|v| v.to_string())),
            cell(r.f.map(|q| (q as f64 / 4.0).to_string())),
            cell(r.b.map(|v| v.to_string())),
            cell(r.d.map(|i| DATES[i].0.to_string())),
            cell(r.t.map(|i| INSTANTS[i].0.to_string())),
        ));
    }
    out
}

fn check(records: Vec<Record>, rules: Vec<String>) -> Result<(), TestCaseError> {
    let mut toml = String::from(
        "[project]\nname = \"p\"\nentity = \"e\"\n\n[entities.e]\nsource = \"e.csv\"\nkey = \"id\"\ncolumns = { s = \"string\", i = \"int\", f = \"float\", b = \"bool\", d = \"date\", t = \"timestamp\" }\n\n",
    );
    for (k, rule) in rules.iter().enumerate() {
        let reference = if k == 0 { "b is null".to_string() } else { format!("in_segment('s{}')", k - 1) };
        let rule = rule.replace('@', &reference).replace('"', "\\\"");
        toml.push_str(&format!("[segments.s{k}]\nrule = \"{rule}\"\n"));
    }
    let project = TempProject::new(&[("segmenta.toml", &toml), ("e.csv", &csv(&records))]);
    let validated = segmenta_engine::validate(&project.load().expect("loads"))
        .map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;
    project.run("2024-06-30", BadRows::Strict).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let actual = memberships(&project);

    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut per_row: Vec<HashMap<String, bool>> = vec![HashMap::new(); records.len()];
    for derived in &validated.derived {
        let Derived::Segment { name, rule: typed, parent: None } = derived else {
            return Err(TestCaseError::fail(format!("only plain rule segments here: {derived:?}")));
        };
        let mut members = Vec::new();
        for (n, record) in records.iter().enumerate() {
            let member = eval(typed, &RecordRow { record, segments: &per_row[n] }) == Ok(Some(true));
            per_row[n].insert(name.clone(), member);
            if member {
                members.push(format!("E{n}"));
            }
        }
        members.sort();
        expected.insert(name.clone(), members);
    }
    prop_assert_eq!(actual, expected, "project:\n{}\ndata:\n{}", toml, csv(&records));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn datafusion_equals_reference_evaluator(
        records in prop::collection::vec(record(), 0..20),
        rules in prop::collection::vec(rule(), 1..5),
    ) {
        check(records, rules)?;
    }
}
