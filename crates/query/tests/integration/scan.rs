//! Property test of the one-pass trait scan: on random small event tables and random traits
//! (written as text, parsed and resolved like users' traits), every trait value of every
//! entity computed by `segmenta_query::evaluate` (events as a Parquet file of small row groups
//! with strings stored in several encodings, and as loaded batches; 1 and 3 threads) equals
//!
//! - DataFusion's own grouped aggregation of the same trait (`lower_trait`, GROUP BY the key,
//!   joined to the entities), and
//! - a row-by-row fold written here, with conditions evaluated by the reference evaluator
//!   `segmenta_rules::eval`.
//!
//! Floats are compared with a relative tolerance (sums are added in another order per thread
//! count); everything else, NULL versus 0 included, exactly. `PROPTEST_CASES` overrides the
//! number of cases.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int32Array,
    Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{JoinType, ident};
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use proptest::prelude::*;
use segmenta_core::{MICROS_PER_DAY, MICROS_PER_HOUR, ValueType, Within};
use segmenta_query::ingest::TableSchema;
use segmenta_query::lower::{EventColumns, lower_trait};
use segmenta_query::{
    Aggregate, EntityData, EvalRequest, EventCounts, EventKeys, EventsInput, EventsRequest, Table,
    TraitSource, TraitSpec, evaluate,
};
use segmenta_rules::ast::{AggFunc, ColumnInfo, ColumnSource, Fraction, Ident, Scalar, TypedTrait};
use segmenta_rules::eval::{Row, eval, percentile};
use segmenta_rules::{AttributeCatalog, parse_trait, resolve_trait};

/// 2024-07-01T00:00:00Z.
const AS_OF: i64 = 19_905 * MICROS_PER_DAY;
const WEEK: i64 = 7 * MICROS_PER_DAY;

/// Entity keys: short ones (kept inline by the scan's key map), one of exactly 12 bytes and a
/// long one. Events may also carry [`UNKNOWN_KEY`] or no key.
const KEYS: [&str; 4] = ["e0", "e1", "exactly12byt", "a_key_longer_than_12"];
const UNKNOWN_KEY: &str = "zz";
const STRINGS: [&str; 6] = ["a", "b", "B", "ab", "ba", "a b"];
const INTS: [i64; 8] = [-3, -1, 0, 1, 2, 5, 7, 1_000_000_007];
/// Without -0.0: the scan reads it as 0.0 (segmenta holds no negative zero, as ingest reads
/// text), while DataFusion over the raw test file would not; `negative_zero_reads_as_zero_everywhere`
/// in the engine's tests holds the whole path.
const FLOATS: [f64; 8] = [-1.5, -0.25, 0.0, 0.1, 0.5, 1.25, 3.0, 1e9];
/// 2024-06-29, 2024-06-30, 2024-07-01.
const DATES: [(&str, i32); 3] = [("2024-06-29", 19_903), ("2024-06-30", 19_904), ("2024-07-01", 19_905)];
/// Fractions of percentiles: the ends, decimals (exact) and exponents (floating point).
const FRACTIONS: [&str; 9] = ["0", "1", "0.5", "0.25", "0.3", "0.9", "0.333", "1e-1", "7.5e-1"];
/// Windows: lengths, calendar months and years back (2024-06-01, 2024-05-01, 2023-07-01) and
/// ranges of days: ending before the instant, on its eve, one day, and running past it.
const WINDOWS: [&str; 15] = [
    "within 1h",
    "within 2h",
    "within 36h",
    "within 1d",
    "within 2d",
    "within 1w",
    "within 2w",
    "within 30d",
    "within 1mo",
    "within 2mo",
    "within 1y",
    "between 2024-06-29 and 2024-06-29",
    "between 2024-05-01 and 2024-06-30",
    "between 2024-06-01 and 2024-06-29",
    "between 2024-06-30 and 2024-07-05",
];

/// Event times as offsets from the as-of instant: on, just inside and just outside every window
/// boundary, at and after the instant, and far back.
const OFFSETS: [i64; 28] = [
    -61 * MICROS_PER_DAY,
    -61 * MICROS_PER_DAY - 1,
    -366 * MICROS_PER_DAY,
    -366 * MICROS_PER_DAY - 1,
    0,
    1,
    MICROS_PER_DAY,
    -1,
    -MICROS_PER_HOUR,
    -MICROS_PER_HOUR - 1,
    -MICROS_PER_HOUR + 1,
    -2 * MICROS_PER_HOUR,
    -36 * MICROS_PER_HOUR,
    -36 * MICROS_PER_HOUR - 1,
    -MICROS_PER_DAY,
    -MICROS_PER_DAY - 1,
    -MICROS_PER_DAY + 1,
    -2 * MICROS_PER_DAY,
    -2 * MICROS_PER_DAY - 1,
    -WEEK,
    -WEEK + 1,
    -WEEK - 1,
    -2 * WEEK,
    -2 * WEEK - 1,
    -30 * MICROS_PER_DAY,
    -30 * MICROS_PER_DAY - 1,
    -1000 * MICROS_PER_DAY,
    -MICROS_PER_DAY * 3 / 2,
];

/// The event columns, in file order, with their canonical types.
const COLUMNS: [(&str, ValueType); 8] = [
    ("k", ValueType::String),
    ("ts", ValueType::Timestamp),
    ("s", ValueType::String),
    ("p", ValueType::String),
    ("i", ValueType::Int),
    ("f", ValueType::Float),
    ("b", ValueType::Bool),
    ("d", ValueType::Date),
];

/// One event; every field may be NULL. `key` indexes [`KEYS`], with `KEYS.len()` for
/// [`UNKNOWN_KEY`].
#[derive(Debug, Clone)]
struct Event {
    key: Option<usize>,
    ts: Option<i64>,
    s: Option<usize>,
    p: Option<usize>,
    i: Option<usize>,
    f: Option<usize>,
    b: Option<bool>,
    d: Option<usize>,
}

impl Event {
    fn key_text(&self) -> Option<&'static str> {
        self.key.map(|k| KEYS.get(k).copied().unwrap_or(UNKNOWN_KEY))
    }
}

impl Row for Event {
    fn get(&self, column: &str) -> Scalar {
        let value = match column {
            "k" => self.key_text().map(|k| Scalar::String(k.to_string())),
            "ts" => self.ts.map(Scalar::Timestamp),
            "s" => self.s.map(|v| Scalar::String(STRINGS[v].to_string())),
            "p" => self.p.map(|v| Scalar::String(STRINGS[v].to_string())),
            "i" => self.i.map(|v| Scalar::Int(INTS[v])),
            "f" => self.f.map(|v| Scalar::Float(FLOATS[v])),
            "b" => self.b.map(Scalar::Bool),
            "d" => self.d.map(|v| Scalar::Date(DATES[v].1)),
            _ => None,
        };
        value.unwrap_or(Scalar::Null)
    }

    fn in_segment(&self, _segment: &str) -> bool {
        false
    }
}

fn event() -> impl Strategy<Value = Event> {
    let time = prop_oneof![
        4 => prop::sample::select(OFFSETS.to_vec()),
        1 => (1..20 * MICROS_PER_DAY).prop_map(|t| -t),
    ]
    .prop_map(|offset| AS_OF + offset);
    (
        prop_oneof![8 => (0..=KEYS.len()).prop_map(Some), 1 => Just(None)],
        prop_oneof![8 => time.prop_map(Some), 1 => Just(None)],
        proptest::option::weighted(0.8, 0..STRINGS.len()),
        proptest::option::weighted(0.8, 0..STRINGS.len()),
        proptest::option::weighted(0.8, 0..INTS.len()),
        proptest::option::weighted(0.8, 0..FLOATS.len()),
        proptest::option::weighted(0.8, any::<bool>()),
        proptest::option::weighted(0.8, 0..DATES.len()),
    )
        .prop_map(|(key, ts, s, p, i, f, b, d)| Event { key, ts, s, p, i, f, b, d })
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
        Just("ts".to_string()),
        prop::sample::select(DATES.to_vec()).prop_map(|(d, _)| format!("DATE '{d}'")),
        prop::sample::select(vec!["2024-06-30T00:00:00Z", "2024-06-30T23:00:00Z", "2024-06-17T00:00:00Z"])
            .prop_map(|t| format!("TIMESTAMP '{t}'")),
    ]
}

/// A random numeric value: arithmetic and functions over `i`, `f` and constants. Products take
/// a constant side and constants are small, so that no value leaves its range (the ints reach
/// 10^9: a product of two stays inside 64 bits, and no more than two are multiplied).
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

/// A random well-typed predicate over the event columns.
fn predicate() -> impl Strategy<Value = String> {
    let string =
        prop_oneof![Just("s".to_string()), Just("p".to_string()), Just("k".to_string()), string_lit()];
    let string_column = prop::sample::select(vec!["s", "p", "k"]);
    let numeric = prop_oneof![Just("i".to_string()), Just("f".to_string()), number_lit()];
    prop_oneof![
        (string.clone(), cmp(), string).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (numeric.clone(), cmp(), numeric).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (arithmetic(), cmp(), arithmetic()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (arithmetic(), any::<bool>(), number_lit(), number_lit())
            .prop_map(|(v, n, a, b)| format!("{v} {}between {a} and {b}", if n { "not " } else { "" })),
        (arithmetic(), any::<bool>())
            .prop_map(|(v, n)| format!("{v} is {}null", if n { "not " } else { "" })),
        (temporal(), cmp(), temporal()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (
            prop_oneof![Just("b"), Just("true")],
            prop::sample::select(vec!["=", "!="]),
            prop_oneof![Just("b"), Just("false")]
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (string_column.clone(), any::<bool>(), prop::collection::vec(string_lit(), 1..3))
            .prop_map(|(c, n, l)| { format!("{c} {}in ({})", if n { "not " } else { "" }, l.join(", ")) }),
        (any::<bool>(), prop::collection::vec(number_lit(), 1..3)).prop_map(|(n, l)| format!(
            "i {}in ({})",
            if n { "not " } else { "" },
            l.join(", ")
        )),
        (prop::sample::select(vec!["i", "f"]), any::<bool>(), number_lit(), number_lit())
            .prop_map(|(c, n, a, b)| format!("{c} {}between {a} and {b}", if n { "not " } else { "" })),
        (any::<bool>(), prop::sample::select(vec!["k", "ts", "s", "p", "i", "f", "b", "d"]))
            .prop_map(|(n, c)| format!("{c} is {}null", if n { "not " } else { "" })),
        (
            string_column,
            any::<bool>(),
            prop::sample::select(vec!["contains", "starts_with", "ends_with"]),
            string_lit()
        )
            .prop_map(|(c, n, op, s)| format!("{c} {}{op} {s}", if n { "not " } else { "" })),
        Just("b".to_string()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    predicate().prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

/// A random trait as a user writes it: every aggregate, over every column it accepts.
fn trait_text() -> impl Strategy<Value = String> {
    let any_column = prop::sample::select(vec!["k", "ts", "s", "p", "i", "f", "b", "d"]);
    let numeric = prop_oneof![
        2 => prop::sample::select(vec!["i".to_string(), "f".to_string()]),
        1 => arithmetic().prop_filter("a constant is no argument", |v| v.parse::<f64>().is_err()),
    ];
    let ordered = prop_oneof![
        2 => prop::sample::select(vec!["i".to_string(), "f".to_string(), "d".to_string(), "ts".to_string()]),
        1 => arithmetic().prop_filter("a constant is no argument", |v| v.parse::<f64>().is_err()),
    ];
    let aggregate = prop_oneof![
        Just("count()".to_string()),
        any_column.clone().prop_map(|c| format!("count({c})")),
        numeric.clone().prop_map(|c| format!("sum({c})")),
        numeric.clone().prop_map(|c| format!("avg({c})")),
        ordered.clone().prop_map(|c| format!("min({c})")),
        ordered.prop_map(|c| format!("max({c})")),
        any_column.prop_map(|c| format!("count_distinct({c})")),
        Just("first_seen()".to_string()),
        Just("last_seen()".to_string()),
        Just("days_since_first()".to_string()),
        Just("days_since_last()".to_string()),
        condition().prop_map(|c| format!("share({c})")),
        numeric.clone().prop_map(|c| format!("median({c})")),
        (numeric.clone(), prop::bool::ANY, prop::sample::select(FRACTIONS.to_vec()))
            .prop_map(|(c, disc, p)| { format!("percentile{}({c}, {p})", if disc { "_disc" } else { "" }) }),
    ];
    (
        aggregate,
        proptest::option::of(condition()),
        proptest::option::of(prop::sample::select(WINDOWS.to_vec())),
    )
        .prop_map(|(aggregate, filter, window)| {
            let mut text = aggregate;
            if let Some(filter) = filter {
                text.push_str(&format!(" where {filter}"));
            }
            if let Some(window) = window {
                text.push_str(&format!(" {window}"));
            }
            text
        })
}

/// How a string column is stored in the Parquet file.
#[derive(Debug, Clone, Copy)]
struct StringStorage {
    /// The Arrow type written: Utf8, LargeUtf8, Utf8View or a dictionary.
    arrow: StringArrow,
    /// Whether the Parquet column chunks are dictionary-encoded.
    dictionary_pages: bool,
}

#[derive(Debug, Clone, Copy)]
enum StringArrow {
    Utf8,
    Large,
    View,
    Dictionary,
}

fn string_storage() -> impl Strategy<Value = StringStorage> {
    (
        prop::sample::select(vec![
            StringArrow::Utf8,
            StringArrow::Large,
            StringArrow::View,
            StringArrow::Dictionary,
        ]),
        any::<bool>(),
    )
        .prop_map(|(arrow, dictionary_pages)| StringStorage { arrow, dictionary_pages })
}

/// The physical layout of the events: Parquet storage and batch sizes.
#[derive(Debug, Clone)]
struct Layout {
    key: StringStorage,
    s: StringStorage,
    p: StringStorage,
    /// `i` written as Int32 (the scan casts to the canonical Int64).
    int32: bool,
    row_group_rows: usize,
    batch_rows: usize,
}

/// How the key column is stored, dictionaries included. Regression (issue 10): the scan once
/// cached a key dictionary's mapping by the address of its buffers, and a later row group's
/// dictionary allocated at the same address reused the stale mapping, so events were counted
/// for the wrong entity (entities `e0`, `e1`; five events keyed e0, e1, e0, e1, e0 written with
/// dictionary pages and one row per row group gave `count()` e0 = 4, e1 = 1 instead of 3 and 2).
fn key_storage() -> BoxedStrategy<StringStorage> {
    string_storage().boxed()
}

fn layout() -> impl Strategy<Value = Layout> {
    (key_storage(), string_storage(), string_storage(), any::<bool>(), 1usize..6, 1usize..6).prop_map(
        |(key, s, p, int32, row_group_rows, batch_rows)| Layout {
            key,
            s,
            p,
            int32,
            row_group_rows,
            batch_rows,
        },
    )
}

/// The event columns as a catalog, as segmenta-engine builds it from the events' schema.
struct EventCatalog;

impl AttributeCatalog for EventCatalog {
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
        .and_then(|parsed| resolve_trait(&parsed, &EventCatalog))
        .map_err(|diagnostics| TestCaseError::fail(format!("the generator wrote `{text}`: {diagnostics:?}")))
}

fn schema() -> TableSchema {
    TableSchema { columns: COLUMNS.iter().map(|(name, ty)| (name.to_string(), *ty)).collect() }
}

fn timestamps(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

fn strings(values: &[Option<&str>], storage: Option<StringArrow>) -> ArrayRef {
    match storage {
        None | Some(StringArrow::Utf8) => Arc::new(StringArray::from(values.to_vec())),
        Some(StringArrow::Large) => Arc::new(LargeStringArray::from(values.to_vec())),
        Some(StringArrow::View) => Arc::new(StringViewArray::from(values.to_vec())),
        Some(StringArrow::Dictionary) => {
            Arc::new(values.iter().copied().collect::<DictionaryArray<Int32Type>>())
        }
    }
}

/// The events as one batch: canonical types without a layout, the file's types with one.
fn events_batch(events: &[Event], layout: Option<&Layout>) -> RecordBatch {
    let text = |f: &dyn Fn(&Event) -> Option<&'static str>| -> Vec<Option<&'static str>> {
        events.iter().map(f).collect()
    };
    let keys = text(&|e| e.key_text());
    let s = text(&|e| e.s.map(|v| STRINGS[v]));
    let p = text(&|e| e.p.map(|v| STRINGS[v]));
    let ints: Vec<Option<i64>> = events.iter().map(|e| e.i.map(|v| INTS[v])).collect();
    let i: ArrayRef = if layout.is_some_and(|l| l.int32) {
        // INTS fit in 32 bits.
        Arc::new(ints.iter().map(|v| v.map(|v| v as i32)).collect::<Int32Array>())
    } else {
        Arc::new(Int64Array::from(ints))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&keys, layout.map(|l| l.key.arrow)),
        timestamps(events.iter().map(|e| e.ts).collect()),
        strings(&s, layout.map(|l| l.s.arrow)),
        strings(&p, layout.map(|l| l.p.arrow)),
        i,
        Arc::new(events.iter().map(|e| e.f.map(|v| FLOATS[v])).collect::<Float64Array>()),
        Arc::new(events.iter().map(|e| e.b).collect::<BooleanArray>()),
        Arc::new(events.iter().map(|e| e.d.map(|v| DATES[v].1)).collect::<Date32Array>()),
    ];
    let fields: Vec<Field> = COLUMNS
        .iter()
        .zip(&columns)
        .map(|((name, _), column)| Field::new(*name, column.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("the columns match their fields")
}

fn write_parquet(path: &std::path::Path, events: &[Event], layout: &Layout) {
    let batch = events_batch(events, Some(layout));
    let mut properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(layout.row_group_rows))
        .set_write_batch_size(2);
    for (column, storage) in [("k", layout.key), ("s", layout.s), ("p", layout.p)] {
        properties =
            properties.set_column_dictionary_enabled(ColumnPath::from(column), storage.dictionary_pages);
    }
    let file = std::fs::File::create(path).expect("create the events file");
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties.build())).expect("a Parquet writer");
    writer.write(&batch).expect("write the events");
    writer.close().expect("close the events file");
}

/// The entity table: the chosen keys, in the chosen order.
fn entity_table(order: &[usize]) -> Table {
    let schema = TableSchema { columns: vec![("id".to_string(), ValueType::String)] };
    let keys: Vec<&str> = order.iter().map(|&k| KEYS[k]).collect();
    let batch = RecordBatch::try_new(schema.arrow_schema(), vec![Arc::new(StringArray::from(keys))])
        .expect("one string column");
    Table { schema, batches: vec![batch] }
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

/// Equal, floats within a relative tolerance (and NULL only equal to NULL).
fn same(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Float(x), Scalar::Float(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

/// Values per entity (rows in `entity_id` order), per trait.
type Values = Vec<Vec<Scalar>>;

fn columns_of(batch: &RecordBatch, first: usize, traits: usize) -> Values {
    (0..batch.num_rows())
        .map(|row| (first..first + traits).map(|c| scalar_at(batch.column(c), row)).collect())
        .collect()
}

/// Whether event `e` counts towards trait `t` of the entity with key `key`: its key, a time
/// before the instant and inside the window, and a TRUE condition.
fn matches(e: &Event, key: usize, t: &TypedTrait) -> bool {
    let Some(ts) = e.ts else { return false };
    let (start, end) = window_bounds(t.within);
    e.key == Some(key)
        && ts < AS_OF
        && ts >= start
        && ts < end
        && t.filter.as_ref().is_none_or(|f| eval(f, e) == Ok(Some(true)))
}

/// The instants `[start, end)` a window keeps as of [`AS_OF`], computed with chrono's calendar
/// (not with `Within::bounds`, which the scan and the lowering share).
fn window_bounds(within: Option<Within>) -> (i64, i64) {
    let months_back = |months: u32| {
        let as_of = chrono::DateTime::from_timestamp_micros(AS_OF).expect("the test instant is valid");
        let start = as_of.checked_sub_months(chrono::Months::new(months)).expect("in range");
        start.timestamp_micros()
    };
    match within {
        None => (i64::MIN, AS_OF),
        Some(Within::Last(window)) => (AS_OF - window.micros(), AS_OF),
        Some(Within::Months(months)) => (months_back(months), AS_OF),
        Some(Within::Years(years)) => (months_back(12 * years), AS_OF),
        Some(Within::Days { first, last }) => {
            let day = |d: i32| i64::from(d) * MICROS_PER_DAY;
            (day(first), day(last + 1).min(AS_OF))
        }
    }
}

fn numeric(s: &Scalar) -> f64 {
    match s {
        Scalar::Int(v) => *v as f64,
        Scalar::Float(v) => *v,
        _ => f64::NAN,
    }
}

/// Orders two non-NULL scalars of one type; floats in IEEE total order.
fn order(a: &Scalar, b: &Scalar) -> std::cmp::Ordering {
    match (a, b) {
        (Scalar::Float(x), Scalar::Float(y)) => x.total_cmp(y),
        (Scalar::Int(x), Scalar::Int(y)) => x.cmp(y),
        (Scalar::Date(x), Scalar::Date(y)) => x.cmp(y),
        (Scalar::Timestamp(x), Scalar::Timestamp(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// The trait's value for one entity, folded event by event: the statement of the semantics in
/// docs/language.md (`count` and `sum` of nothing are 0, the rest NULL).
fn fold(events: &[Event], key: usize, t: &TypedTrait) -> Scalar {
    let rows: Vec<&Event> = events.iter().filter(|e| matches(e, key, t)).collect();
    let args: Vec<Scalar> = match &t.arg {
        Some(arg) => rows
            .iter()
            .map(|e| segmenta_rules::eval::value(arg, *e).expect("values stay in range"))
            .filter(|v| *v != Scalar::Null)
            .collect(),
        None => Vec::new(),
    };
    let times = rows.iter().filter_map(|e| e.ts);
    match t.agg {
        AggFunc::Count if t.arg.is_none() => Scalar::Int(rows.len() as i64),
        AggFunc::Count => Scalar::Int(args.len() as i64),
        AggFunc::Sum if t.output == ValueType::Int => {
            Scalar::Int(args.iter().map(|v| if let Scalar::Int(v) = v { *v } else { 0 }).sum())
        }
        AggFunc::Sum => Scalar::Float(args.iter().map(numeric).sum()),
        AggFunc::Avg if args.is_empty() => Scalar::Null,
        AggFunc::Avg => Scalar::Float(args.iter().map(numeric).sum::<f64>() / args.len() as f64),
        AggFunc::Min => args.into_iter().min_by(order).unwrap_or(Scalar::Null),
        AggFunc::Max => args.into_iter().max_by(order).unwrap_or(Scalar::Null),
        AggFunc::CountDistinct => {
            // Debug text tells -0.0 from 0.0, as value equality in the total order does.
            let distinct: HashSet<String> = args.iter().map(|v| format!("{v:?}")).collect();
            Scalar::Int(distinct.len() as i64)
        }
        AggFunc::FirstSeen => times.min().map_or(Scalar::Null, Scalar::Timestamp),
        AggFunc::LastSeen => times.max().map_or(Scalar::Null, Scalar::Timestamp),
        AggFunc::DaysSinceFirst => {
            times.min().map_or(Scalar::Null, |t| Scalar::Int((AS_OF - t) / MICROS_PER_DAY))
        }
        AggFunc::DaysSinceLast => {
            times.max().map_or(Scalar::Null, |t| Scalar::Int((AS_OF - t) / MICROS_PER_DAY))
        }
        AggFunc::Median | AggFunc::Percentile(_) | AggFunc::PercentileDisc(_) => {
            let fraction = t.agg.fraction().unwrap_or(Fraction::HALF);
            percentile(&args, fraction, matches!(t.agg, AggFunc::PercentileDisc(_)))
        }
        AggFunc::Share => {
            if rows.is_empty() {
                return Scalar::Null;
            }
            let Some(condition) = &t.condition else {
                return Scalar::String("share without a condition".into());
            };
            let yes = rows.iter().filter(|&&e| eval(condition, e) == Ok(Some(true))).count();
            Scalar::Float(yes as f64 / rows.len() as f64)
        }
    }
}

/// The event accounting the engine reports, counted here.
fn expected_counts(events: &[Event], entities: &[usize]) -> EventCounts {
    let mut counts = EventCounts { read: events.len() as u64, ..EventCounts::default() };
    for e in events {
        let Some(key) = e.key else {
            counts.rejected_no_key += 1;
            continue;
        };
        match e.ts {
            None => counts.ignored_no_time += 1,
            Some(ts) if ts >= AS_OF => counts.ignored_after_as_of += 1,
            Some(_) if entities.contains(&key) => counts.used += 1,
            Some(_) => counts.ignored_unknown_entity += 1,
        }
    }
    counts
}

/// The rows without a key, and the five smallest unknown keys of events before the as-of
/// instant.
fn expected_keys(events: &[Event], entities: &[usize]) -> EventKeys {
    let missing_key_rows =
        events.iter().enumerate().filter(|(_, e)| e.key.is_none()).map(|(i, _)| i as u64 + 1).collect();
    let unknown: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| e.ts.is_some_and(|ts| ts < AS_OF) && e.key.is_some_and(|k| !entities.contains(&k)))
        .filter_map(|e| e.key_text())
        .collect();
    EventKeys { unknown_sample: unknown.into_iter().take(5).map(String::from).collect(), missing_key_rows }
}

/// DataFusion's grouped aggregation of the traits (`lower_trait`), joined to the entities.
async fn datafusion_values(
    events: RecordBatch,
    entities: &Table,
    traits: &[TypedTrait],
) -> datafusion::error::Result<Values> {
    let ctx = SessionContext::new();
    let schema: SchemaRef = events.schema();
    let events = ctx.read_table(Arc::new(MemTable::try_new(schema, vec![vec![events]])?))?;
    let entity_rows = ctx.read_table(Arc::new(MemTable::try_new(
        entities.schema.arrow_schema(),
        vec![entities.batches.clone()],
    )?))?;
    let rows = EventColumns { time: Some("ts".to_string()) };
    let mut aggregates = Vec::new();
    let mut finishes = vec![ident("id")];
    for (n, t) in traits.iter().enumerate() {
        let lowered = lower_trait(t, &rows, AS_OF, &segmenta_query::Owner::default())
            .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        aggregates.push(lowered.aggregate.alias(format!("agg_{n}")));
        finishes.push((lowered.finish)(ident(format!("agg_{n}")), AS_OF).alias(format!("t{n}")));
    }
    let grouped = events.aggregate(vec![ident("k").alias("group_key")], aggregates)?;
    let joined = entity_rows
        .join(grouped, JoinType::Left, &["id"], &["group_key"], None)?
        .select(finishes)?
        .sort(vec![ident("id").sort(true, false)])?;
    let batches = joined.collect().await?;
    let mut out = Values::new();
    for batch in &batches {
        // Outputs are cast to the trait's type, as the run does for traits.parquet.
        let mut columns = Vec::new();
        for (n, t) in traits.iter().enumerate() {
            columns.push(arrow::compute::cast(
                batch.column(n + 1),
                &segmenta_query::ingest::arrow_type(t.output),
            )?);
        }
        for row in 0..batch.num_rows() {
            out.push(columns.iter().map(|c| scalar_at(c.as_ref(), row)).collect());
        }
    }
    Ok(out)
}

fn describe(events: &[Event], texts: &[String], order: &[usize]) -> String {
    let mut out = String::new();
    for (n, text) in texts.iter().enumerate() {
        out.push_str(&format!("t{n} = {text}\n"));
    }
    out.push_str(&format!(
        "entities: {:?}\nevents (k, ts - as_of in s, s, p, i, f, b, d):\n",
        order.iter().map(|&k| KEYS[k]).collect::<Vec<_>>()
    ));
    for e in events {
        out.push_str(&format!(
            "  {:?}, {:?}, {:?}, {:?}, {:?}, {:?}, {:?}, {:?}\n",
            e.key_text(),
            e.ts.map(|t| (t - AS_OF) as f64 / 1e6),
            e.s.map(|v| STRINGS[v]),
            e.p.map(|v| STRINGS[v]),
            e.i.map(|v| INTS[v]),
            e.f.map(|v| FLOATS[v]),
            e.b,
            e.d.map(|v| DATES[v].0),
        ));
    }
    out
}

fn check(
    events: Vec<Event>,
    texts: Vec<String>,
    order: Vec<usize>,
    layout: Layout,
) -> Result<(), TestCaseError> {
    let traits: Vec<TypedTrait> = texts.iter().map(|t| resolve(t)).collect::<Result<_, _>>()?;
    let entities = entity_table(&order);
    let mut sorted_keys = order.clone();
    sorted_keys.sort_by_key(|&k| KEYS[k]);
    let context = || format!("{}{layout:?}", describe(&events, &texts, &order));

    // The oracles.
    let folded: Values =
        sorted_keys.iter().map(|&key| traits.iter().map(|t| fold(&events, key, t)).collect()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let canonical = events_batch(&events, None);
    let datafusion = runtime
        .block_on(datafusion_values(canonical.clone(), &entities, &traits))
        .map_err(|e| TestCaseError::fail(format!("DataFusion: {e}\n{}", context())))?;
    let counts = expected_counts(&events, &order);
    let keys = expected_keys(&events, &order);

    // The inputs: a Parquet file of small row groups, and batches of a few rows.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("events.parquet");
    write_parquet(&path, &events, &layout);
    let batches: Vec<RecordBatch> = (0..events.len())
        .step_by(layout.batch_rows)
        .map(|start| canonical.slice(start, layout.batch_rows.min(events.len() - start)))
        .collect();
    // Events posted to a server: a file of the first half and batches of the rest after it.
    let split = events.len() / 2;
    let head = dir.path().join("head.parquet");
    write_parquet(&head, &events[..split], &layout);
    let appended: Vec<RecordBatch> = (split..events.len())
        .step_by(layout.batch_rows)
        .map(|start| canonical.slice(start, layout.batch_rows.min(events.len() - start)))
        .collect();
    let inputs = [
        ("parquet", EventsInput::Parquet { path: path.clone(), schema: schema(), appended: Vec::new() }),
        ("parquet and appended rows", EventsInput::Parquet { path: head, schema: schema(), appended }),
        ("batches", EventsInput::Table(Table { schema: schema(), batches })),
    ];
    let specs: Vec<TraitSpec> = traits
        .iter()
        .enumerate()
        .map(|(n, t)| TraitSpec {
            name: format!("t{n}"),
            entity: "account".into(),
            source: TraitSource::Events,
            aggregate: Aggregate::Trait(Box::new(t.clone())),
        })
        .collect();
    for (input_name, input) in inputs {
        for threads in [1, 3] {
            let request = EvalRequest {
                entities: vec![EntityData {
                    name: "account".into(),
                    source: "accounts.csv".into(),
                    table: entities.clone(),
                    key: "id".into(),
                    parent: None,
                    hierarchy: None,
                }],
                entity: "account".into(),
                parent_columns: Vec::new(),
                events: Some(EventsRequest {
                    input: input.clone(),
                    entity: "account".into(),
                    key: "k".into(),
                    time: "ts".into(),
                }),
                traits: specs.clone(),
                rfm: None,
                derived: Vec::new(),
                outputs: traits.iter().enumerate().map(|(n, t)| (format!("t{n}"), t.output)).collect(),
                segments: Vec::new(),
                as_of: AS_OF,
                threads,
                extensions: Vec::new(),
                cancel: Default::default(),
                pool: None,
                scanned: None,
            };
            let run = format!("{input_name}, {threads} thread(s)");
            let output = runtime
                .block_on(evaluate(&request))
                .map_err(|e| TestCaseError::fail(format!("{run}: {e}\n{}", context())))?;
            prop_assert_eq!(output.events, counts, "{}: event accounting\n{}", run, context());
            prop_assert_eq!(&output.event_keys, &keys, "{}: event keys\n{}", run, context());
            let ids: Vec<Scalar> =
                (0..output.traits.num_rows()).map(|r| scalar_at(output.traits.column(0), r)).collect();
            let wanted: Vec<Scalar> =
                sorted_keys.iter().map(|&k| Scalar::String(KEYS[k].to_string())).collect();
            prop_assert_eq!(ids, wanted, "{}: entity ids\n{}", run, context());
            let scanned = columns_of(&output.traits, 1, traits.len());
            for (row, &key) in sorted_keys.iter().enumerate() {
                for (n, text) in texts.iter().enumerate() {
                    let (engine, by_fold, by_datafusion) =
                        (&scanned[row][n], &folded[row][n], &datafusion[row][n]);
                    prop_assert!(
                        same(engine, by_fold) && same(engine, by_datafusion),
                        "{run}: entity {} trait t{n} `{text}`: evaluate {engine:?}, row fold {by_fold:?}, DataFusion {by_datafusion:?}\n{}",
                        KEYS[key],
                        context()
                    );
                }
            }
        }
    }
    Ok(())
}

/// Cases per run: `PROPTEST_CASES`, else 512 (about 6 s in a debug build on 2 cores).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}

/// A non-empty set of entity keys, in a random order.
fn entity_order() -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence((0..KEYS.len()).collect::<Vec<_>>(), 1..=KEYS.len()).prop_shuffle()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn scan_equals_datafusion_and_a_row_fold(
        events in prop::collection::vec(event(), 0..24),
        texts in prop::collection::vec(trait_text(), 1..6),
        order in entity_order(),
        layout in layout(),
    ) {
        check(events, texts, order, layout)?;
    }
}
