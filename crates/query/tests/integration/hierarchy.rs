//! Hierarchy rollups (`over = "children"` / `"descendants"`) through `segmenta_query::evaluate`,
//! held to the SQL statement of them: DataFusion's grouped aggregation of the same trait
//! (`lower_trait`) over (ancestor, descendant) pairs enumerated here by walking up the parents,
//! joined to the rows, grouped by ancestor and joined back to the entities (the path the
//! bottom-up fold replaced).
//!
//! The property test draws random forests (NULL parents, parents that are not rows, rows in any
//! order) with NULLs in every column, and traits of every aggregate with and without a `where`
//! condition. Floats are dyadic, so sums are exact in any order and compared exactly; `-0.0` is
//! left out (DataFusion's lowering and the vectorized evaluator read conditions on it
//! differently; see `scan.rs`). `PROPTEST_CASES` overrides the number of cases.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{JoinType, ident};
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use segmenta_core::{MICROS_PER_DAY, ValueType};
use segmenta_query::ingest::TableSchema;
use segmenta_query::lower::{EventColumns, lower_trait};
use segmenta_query::{Aggregate, EntityData, EvalRequest, Table, TraitSource, TraitSpec, evaluate};
use segmenta_rules::ast::{ColumnInfo, ColumnSource, Ident, Scalar, TypedTrait};
use segmenta_rules::{AttributeCatalog, parse_trait, resolve_trait};

/// 2024-07-01T00:00:00Z.
const AS_OF: i64 = 19_905 * MICROS_PER_DAY;
const STRINGS: [&str; 4] = ["a", "b", "B", "ab"];
const INTS: [i64; 6] = [-3, 0, 1, 2, 7, 1_000_000_007];
const FLOATS: [f64; 6] = [-1.5, -0.25, 0.0, 0.5, 3.0, 1e9];
const DAYS: [i32; 3] = [19_903, 19_904, 19_905];
const TIMES: [i64; 3] = [AS_OF - MICROS_PER_DAY, AS_OF - 1, AS_OF + 7];
/// The parent of a row that names no row.
const UNKNOWN: &str = "nope";

/// The entity's columns (`id` its key, `up` its hierarchy) with their canonical types.
const COLUMNS: [(&str, ValueType); 8] = [
    ("id", ValueType::String),
    ("up", ValueType::String),
    ("s", ValueType::String),
    ("i", ValueType::Int),
    ("f", ValueType::Float),
    ("b", ValueType::Bool),
    ("d", ValueType::Date),
    ("ts", ValueType::Timestamp),
];

/// Where a row's parent points.
#[derive(Debug, Clone)]
enum Up {
    Null,
    Unknown,
    /// A row drawn before this one (so the rows form a forest), as an index into those rows.
    Row(usize),
}

#[derive(Debug, Clone)]
struct Row {
    up: Up,
    s: Option<usize>,
    i: Option<usize>,
    f: Option<usize>,
    b: Option<bool>,
    d: Option<usize>,
    ts: Option<usize>,
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop_oneof![1 => Just(Up::Null), 1 => Just(Up::Unknown), 6 => any::<usize>().prop_map(Up::Row)],
        proptest::option::weighted(0.8, 0..STRINGS.len()),
        proptest::option::weighted(0.8, 0..INTS.len()),
        proptest::option::weighted(0.8, 0..FLOATS.len()),
        proptest::option::weighted(0.8, any::<bool>()),
        proptest::option::weighted(0.8, 0..DAYS.len()),
        proptest::option::weighted(0.8, 0..TIMES.len()),
    )
        .prop_map(|(up, s, i, f, b, d, ts)| Row { up, s, i, f, b, d, ts })
}

/// The rows in drawing order, and the order they are stored in (a permutation).
fn forest() -> impl Strategy<Value = (Vec<Row>, Vec<usize>)> {
    prop::collection::vec(row(), 0..24).prop_flat_map(|rows| {
        let order: Vec<usize> = (0..rows.len()).collect();
        (Just(rows), Just(order).prop_shuffle())
    })
}

/// The parent key of row `n` (drawn n-th).
fn parent_key(rows: &[Row], n: usize) -> Option<String> {
    match rows[n].up {
        Up::Null => None,
        Up::Unknown => Some(UNKNOWN.to_string()),
        Up::Row(_) if n == 0 => None,
        Up::Row(k) => Some(format!("r{}", k % n)),
    }
}

fn predicate() -> impl Strategy<Value = String> {
    let cmp = prop::sample::select(vec!["=", "!=", "<", ">="]);
    prop_oneof![
        (prop::sample::select(STRINGS.to_vec()), cmp.clone()).prop_map(|(v, op)| format!("s {op} '{v}'")),
        (prop::sample::select(vec!["i", "f"]), cmp, -2i64..=2).prop_map(|(c, op, v)| format!("{c} {op} {v}")),
        Just("b".to_string()),
        prop::sample::select(vec!["s", "i", "f", "b", "d", "ts", "up"]).prop_map(|c| format!("{c} is null")),
        Just("d >= DATE '2024-06-30'".to_string()),
        Just("ts < TIMESTAMP '2024-07-01T00:00:00Z'".to_string()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    predicate().prop_recursive(2, 4, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

/// A rollup trait of every aggregate that takes entity rows, over every column it accepts.
fn trait_text() -> impl Strategy<Value = String> {
    let any_column = prop::sample::select(vec!["s", "i", "f", "b", "d", "ts", "id"]);
    // Columns, and values computed from them (folded as columns are).
    let computed =
        prop::sample::select(vec!["i * 2 - 1", "f / 4", "coalesce(i, 0) + f", "abs(f) * -1", "round(f, 0)"]);
    let numeric = prop_oneof![
        2 => prop::sample::select(vec!["i", "f"]).prop_map(String::from),
        1 => computed.clone().prop_map(String::from),
    ];
    let ordered = prop_oneof![
        2 => prop::sample::select(vec!["i", "f", "d", "ts"]).prop_map(String::from),
        1 => computed.prop_map(String::from),
    ];
    let aggregate = prop_oneof![
        Just("count()".to_string()),
        any_column.clone().prop_map(|c| format!("count({c})")),
        numeric.clone().prop_map(|c| format!("sum({c})")),
        numeric.prop_map(|c| format!("avg({c})")),
        ordered.clone().prop_map(|c| format!("min({c})")),
        ordered.prop_map(|c| format!("max({c})")),
        any_column.prop_map(|c| format!("count_distinct({c})")),
        condition().prop_map(|c| format!("share({c})")),
        // Does not fold: aggregated over pairs, next to the folded ones.
        prop::sample::select(vec!["i", "f"]).prop_map(|c| format!("median({c})")),
    ];
    (aggregate, proptest::option::of(condition())).prop_map(|(aggregate, filter)| match filter {
        Some(filter) => format!("{aggregate} where {filter}"),
        None => aggregate,
    })
}

/// The entity's columns as the catalog of a rollup.
struct EntityCatalog;

impl AttributeCatalog for EntityCatalog {
    fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
        if ident.qualifier.is_some() {
            return None;
        }
        COLUMNS.iter().find(|(name, _)| *name == ident.name).map(|(name, ty)| ColumnInfo {
            column: name.to_string(),
            ty: *ty,
            source: ColumnSource::EventColumn,
        })
    }

    fn names(&self) -> Vec<String> {
        COLUMNS.iter().map(|(name, _)| name.to_string()).collect()
    }
}

fn resolve(text: &str) -> Result<TypedTrait, TestCaseError> {
    parse_trait(text)
        .and_then(|parsed| resolve_trait(&parsed, &EntityCatalog))
        .map_err(|diagnostics| TestCaseError::fail(format!("the generator wrote `{text}`: {diagnostics:?}")))
}

fn schema() -> TableSchema {
    TableSchema { columns: COLUMNS.iter().map(|(name, ty)| (name.to_string(), *ty)).collect() }
}

/// The entity table: row `n` is `r{n}`, stored in `order`.
fn table(rows: &[Row], order: &[usize]) -> Table {
    let pick = |f: &dyn Fn(usize) -> Option<String>| -> ArrayRef {
        Arc::new(order.iter().map(|&n| f(n)).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        pick(&|n| Some(format!("r{n}"))),
        pick(&|n| parent_key(rows, n)),
        pick(&|n| rows[n].s.map(|v| STRINGS[v].to_string())),
        Arc::new(order.iter().map(|&n| rows[n].i.map(|v| INTS[v])).collect::<Int64Array>()),
        Arc::new(order.iter().map(|&n| rows[n].f.map(|v| FLOATS[v])).collect::<Float64Array>()),
        Arc::new(order.iter().map(|&n| rows[n].b).collect::<BooleanArray>()),
        Arc::new(order.iter().map(|&n| rows[n].d.map(|v| DAYS[v])).collect::<Date32Array>()),
        Arc::new(
            order
                .iter()
                .map(|&n| rows[n].ts.map(|v| TIMES[v]))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
    ];
    let schema = schema();
    let batch = RecordBatch::try_new(schema.arrow_schema(), columns).expect("the columns match the schema");
    Table { schema, batches: vec![batch] }
}

fn request(table: Table, specs: Vec<TraitSpec>, outputs: Vec<(String, ValueType)>) -> EvalRequest {
    EvalRequest {
        entities: vec![EntityData {
            name: "account".into(),
            source: "accounts.csv".into(),
            table,
            key: "id".into(),
            parent: None,
            hierarchy: Some("up".into()),
        }],
        entity: "account".into(),
        parent_columns: Vec::new(),
        events: None,
        traits: specs,
        rfm: None,
        derived: Vec::new(),
        outputs,
        segments: Vec::new(),
        as_of: AS_OF,
        threads: 2,
        extensions: Vec::new(),
        cancel: Default::default(),
        pool: None,
        scanned: None,
    }
}

fn scalar_at(array: &dyn Array, row: usize) -> Scalar {
    if array.is_null(row) {
        return Scalar::Null;
    }
    match array.data_type() {
        DataType::Int64 => Scalar::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => Scalar::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Date32 => Scalar::Date(array.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Scalar::Timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Boolean => Scalar::Bool(array.as_boolean().value(row)),
        DataType::Utf8 => Scalar::String(array.as_string::<i32>().value(row).to_string()),
        other => Scalar::String(format!("<unexpected type {other}>")),
    }
}

/// Values per entity (rows in key order), per trait.
type Values = Vec<Vec<Scalar>>;

/// (ancestor, descendant) pairs of keys: each row's parent, or every ancestor, walking up.
fn pairs(table: &Table, descendants: bool) -> RecordBatch {
    let batch = &table.batches[0];
    let (keys, ups) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
    let parent: HashMap<&str, &str> =
        (0..batch.num_rows()).filter(|&r| ups.is_valid(r)).map(|r| (keys.value(r), ups.value(r))).collect();
    let rows: std::collections::HashSet<&str> = keys.iter().flatten().collect();
    let (mut ancestors, mut members) = (Vec::new(), Vec::new());
    for key in keys.iter().flatten() {
        let mut current = parent.get(key).copied().filter(|p| rows.contains(p));
        while let Some(ancestor) = current {
            ancestors.push(ancestor);
            members.push(key);
            if !descendants {
                break;
            }
            current = parent.get(ancestor).copied().filter(|p| rows.contains(p));
        }
    }
    let schema = Schema::new(vec![
        Field::new("ancestor", DataType::Utf8, false),
        Field::new("member", DataType::Utf8, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(StringArray::from(ancestors)), Arc::new(StringArray::from(members))],
    )
    .expect("two string columns")
}

/// The SQL path: each trait lowered by `lower_trait`, aggregated over the pairs joined to the
/// rows, grouped by ancestor, joined to the entities and finished.
async fn over_pairs(table: &Table, traits: &[(TypedTrait, bool)]) -> datafusion::error::Result<Values> {
    let ctx = SessionContext::new();
    let rows = ctx
        .read_table(Arc::new(MemTable::try_new(table.schema.arrow_schema(), vec![table.batches.clone()])?))?;
    let mut per_trait = Vec::new();
    for (t, descendants) in traits {
        let pairs = pairs(table, *descendants);
        let pairs = ctx.read_table(Arc::new(MemTable::try_new(pairs.schema(), vec![vec![pairs]])?))?;
        let lowered = lower_trait(t, &EventColumns { time: None }, AS_OF, &segmenta_query::Owner::default())
            .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        let grouped = pairs
            .join(rows.clone(), JoinType::Inner, &["member"], &["id"], None)?
            .aggregate(vec![ident("ancestor")], vec![lowered.aggregate.alias("value")])?;
        let finished = rows
            .clone()
            .join(grouped, JoinType::Left, &["id"], &["ancestor"], None)?
            .select(vec![ident("id"), (lowered.finish)(ident("value"), AS_OF).alias("value")])?
            .sort(vec![ident("id").sort(true, false)])?;
        let mut values = Vec::new();
        for batch in finished.collect().await? {
            let column =
                arrow::compute::cast(batch.column(1), &segmenta_query::ingest::arrow_type(t.output))?;
            values.extend((0..batch.num_rows()).map(|r| scalar_at(column.as_ref(), r)));
        }
        per_trait.push(values);
    }
    let entities = table.batches[0].num_rows();
    Ok((0..entities).map(|e| per_trait.iter().map(|values| values[e].clone()).collect()).collect())
}

fn spec(n: usize, t: &TypedTrait, descendants: bool) -> TraitSpec {
    TraitSpec {
        name: format!("t{n}"),
        entity: "account".into(),
        source: TraitSource::Hierarchy { descendants },
        aggregate: Aggregate::Trait(Box::new(t.clone())),
    }
}

fn describe(rows: &[Row], order: &[usize], texts: &[(String, bool)]) -> String {
    let mut out = String::new();
    for (n, (text, descendants)) in texts.iter().enumerate() {
        out.push_str(&format!(
            "t{n} = {text} over {}\n",
            if *descendants { "descendants" } else { "children" }
        ));
    }
    out.push_str("rows (id, up, s, i, f, b, d, ts) in stored order:\n");
    for &n in order {
        let r = &rows[n];
        out.push_str(&format!(
            "  r{n}, {:?}, {:?}, {:?}, {:?}, {:?}, {:?}, {:?}\n",
            parent_key(rows, n),
            r.s.map(|v| STRINGS[v]),
            r.i.map(|v| INTS[v]),
            r.f.map(|v| FLOATS[v]),
            r.b,
            r.d.map(|v| DAYS[v]),
            r.ts.map(|v| TIMES[v]),
        ));
    }
    out
}

fn check(rows: Vec<Row>, order: Vec<usize>, texts: Vec<(String, bool)>) -> Result<(), TestCaseError> {
    let traits: Vec<(TypedTrait, bool)> =
        texts.iter().map(|(t, d)| resolve(t).map(|t| (t, *d))).collect::<Result<_, _>>()?;
    let table = table(&rows, &order);
    let context = || describe(&rows, &order, &texts);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let expected = runtime
        .block_on(over_pairs(&table, &traits))
        .map_err(|e| TestCaseError::fail(format!("DataFusion: {e}\n{}", context())))?;
    let specs = traits.iter().enumerate().map(|(n, (t, d))| spec(n, t, *d)).collect();
    let outputs = traits.iter().enumerate().map(|(n, (t, _))| (format!("t{n}"), t.output)).collect();
    let output = runtime
        .block_on(evaluate(&request(table.clone(), specs, outputs)))
        .map_err(|e| TestCaseError::fail(format!("evaluate: {e}\n{}", context())))?;
    // The evaluation table holds the traits over children, then those over descendants, each
    // in the order they were asked for.
    let names: Vec<String> = output.table.schema().fields().iter().map(|f| f.name().clone()).collect();
    let traits_in_table: Vec<&String> = names.iter().filter(|n| n.starts_with('t') && *n != "ts").collect();
    let mut asked: Vec<(bool, String)> =
        texts.iter().enumerate().map(|(n, (_, descendants))| (*descendants, format!("t{n}"))).collect();
    asked.sort_by_key(|(descendants, _)| *descendants);
    let asked: Vec<String> = asked.into_iter().map(|(_, name)| name).collect();
    prop_assert_eq!(traits_in_table, asked.iter().collect::<Vec<_>>(), "{}", context());
    let mut keys: Vec<String> = order.iter().map(|n| format!("r{n}")).collect();
    keys.sort();
    let ids: Vec<Scalar> =
        (0..output.traits.num_rows()).map(|r| scalar_at(output.traits.column(0), r)).collect();
    prop_assert_eq!(ids, keys.iter().map(|k| Scalar::String(k.clone())).collect::<Vec<_>>());
    for (row, key) in keys.iter().enumerate() {
        for (n, (text, descendants)) in texts.iter().enumerate() {
            let got = scalar_at(output.traits.column(n + 1), row);
            prop_assert_eq!(
                &got,
                &expected[row][n],
                "entity {} trait t{} `{}` over {}\n{}",
                key,
                n,
                text,
                if *descendants { "descendants" } else { "children" },
                context()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn hierarchy_rollups_equal_aggregation_over_enumerated_pairs(
        (rows, order) in forest(),
        texts in prop::collection::vec((trait_text(), any::<bool>()), 1..6),
    ) {
        check(rows, order, texts)?;
    }
}

/// Issue 11: rollups over a chain of 100,000 accounts (5 billion (ancestor, descendant) pairs)
/// finish; each account's descendants are the accounts after it.
#[test]
fn hierarchy_rollups_over_a_chain_of_100000_accounts() {
    let n = 100_000usize;
    let ids: Vec<String> = (0..n).map(|i| format!("a{i:06}")).collect();
    let ups: Vec<Option<String>> = (0..n).map(|i| (i > 0).then(|| ids[i - 1].clone())).collect();
    let schema = TableSchema {
        columns: vec![
            ("id".into(), ValueType::String),
            ("up".into(), ValueType::String),
            ("arr".into(), ValueType::Int),
            ("plan".into(), ValueType::String),
        ],
    };
    let arr: Int64Array = (0..n as i64).map(|i| (i % 7 != 0).then_some(i)).collect();
    let plan: StringArray = (0..n).map(|i| Some(["free", "pro", "enterprise"][i % 3])).collect();
    let batch = RecordBatch::try_new(
        schema.arrow_schema(),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(ups)),
            Arc::new(arr),
            Arc::new(plan),
        ],
    )
    .expect("four columns");
    let catalog = ChainCatalog;
    let texts = [
        ("count()", true),
        ("sum(arr)", true),
        ("max(arr) where plan = 'pro'", true),
        ("count_distinct(plan)", true),
        ("avg(arr)", false),
    ];
    let traits: Vec<TypedTrait> = texts
        .iter()
        .map(|(t, _)| resolve_trait(&parse_trait(t).expect("parses"), &catalog).expect("resolves"))
        .collect();
    let specs = traits.iter().zip(&texts).enumerate().map(|(k, (t, (_, d)))| spec(k, t, *d)).collect();
    let outputs = traits.iter().enumerate().map(|(k, t)| (format!("t{k}"), t.output)).collect();
    let request = request(Table { schema, batches: vec![batch] }, specs, outputs);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let output = runtime.block_on(evaluate(&request)).expect("the chain evaluates");
    let traits = &output.traits;
    let at = |column: usize, row: usize| scalar_at(traits.column(column), row);
    // The root a000000: every other account is a descendant.
    let sum: i64 = (1..n as i64).filter(|i| i % 7 != 0).sum();
    let last_pro = (1..n as i64).rev().find(|i| i % 3 == 1 && i % 7 != 0).expect("a pro account");
    assert_eq!(at(1, 0), Scalar::Int(n as i64 - 1));
    assert_eq!(at(2, 0), Scalar::Int(sum));
    assert_eq!(at(3, 0), Scalar::Int(last_pro));
    assert_eq!(at(4, 0), Scalar::Int(3));
    assert_eq!(at(5, 0), Scalar::Float(1.0));
    // Halfway down: a050000's descendants are a050001 and after.
    let half = n / 2;
    let sum: i64 = (half as i64 + 1..n as i64).filter(|i| i % 7 != 0).sum();
    assert_eq!(at(1, half), Scalar::Int((n - half - 1) as i64));
    assert_eq!(at(2, half), Scalar::Int(sum));
    // The leaf: no descendants, no children.
    assert_eq!(at(1, n - 1), Scalar::Int(0));
    assert_eq!(at(2, n - 1), Scalar::Int(0));
    assert_eq!(at(3, n - 1), Scalar::Null);
    assert_eq!(at(4, n - 1), Scalar::Int(0));
    assert_eq!(at(5, n - 1), Scalar::Null);
}

struct ChainCatalog;

impl AttributeCatalog for ChainCatalog {
    fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
        let ty = match ident.name.as_str() {
            "arr" => ValueType::Int,
            "plan" | "id" | "up" => ValueType::String,
            _ => return None,
        };
        Some(ColumnInfo { column: ident.name.clone(), ty, source: ColumnSource::EventColumn })
    }

    fn names(&self) -> Vec<String> {
        ["id", "up", "arr", "plan"].map(String::from).to_vec()
    }
}
