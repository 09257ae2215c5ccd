//! Posted events (`ServedProject::ingest_events`) count in a run exactly as the same events
//! would at the end of the events file: the run's traits and memberships are the same bytes,
//! for CSV and for Parquet events (where they are scanned as units after the file's).

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use proptest::prelude::*;
use segmenta_engine::{AsOf, BadRows, ServedProject};

use crate::support::{TempProject, memberships, to_json};

const TOML: &str = r#"[project]
name = "t"
entity = "account"

[entities.account]
source = "accounts.csv"
key = "account_id"

[events]
source = "EVENTS"
entity_key = "account_id"
time = "ts"
columns = { amount = "float" }

[traits]
events = "count()"
spend = "sum(amount) where kind = 'buy'"
recent = "count() within 30d"
kinds = "count_distinct(kind)"
first = "first_seen()"
last_buy = "last_seen() where kind = 'buy'"
biggest = "max(amount)"

[segments.buyers]
rule = "spend > 40"

[segments.busy]
rule = "recent >= 2 and kinds >= 2"
"#;

const KINDS: [&str; 3] = ["buy", "visit", "call"];
const AS_OF: &str = "2024-06-30";

/// An event: account (of 8; 8 and 9 are not accounts), day before the as-of (0..90, some after
/// it), kind, amount.
type Event = (usize, i64, usize, Option<f64>);

fn event() -> impl Strategy<Value = Event> {
    (0..10usize, -5..90i64, 0..3usize, proptest::option::of((0..400u32).prop_map(|c| f64::from(c) / 8.0)))
}

fn instant(days_before: i64) -> i64 {
    AsOf::parse(AS_OF).expect("a date").instant - days_before * 86_400_000_000 - 3_600_000_000
}

fn json(e: &Event) -> String {
    let ts = chrono::DateTime::from_timestamp_micros(instant(e.1)).expect("an instant").to_rfc3339();
    let amount = e.3.map(|a| format!(r#", "amount": {a:?}"#)).unwrap_or_default();
    format!(r#"{{"account_id": "a{}", "ts": "{ts}", "kind": "{}"{amount}}}"#, e.0, KINDS[e.2])
}

fn csv(events: &[Event]) -> String {
    let mut text = String::from("account_id,ts,kind,amount\n");
    for e in events {
        let ts = chrono::DateTime::from_timestamp_micros(instant(e.1)).expect("an instant").to_rfc3339();
        let amount = e.3.map(|a| format!("{a:?}")).unwrap_or_default();
        text.push_str(&format!("a{},{ts},{},{amount}\n", e.0, KINDS[e.2]));
    }
    text
}

fn parquet(path: &std::path::Path, events: &[Event]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("kind", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| format!("a{}", e.0)))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(events.iter().map(|e| instant(e.1)))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| KINDS[e.2]))),
            Arc::new(events.iter().map(|e| e.3).collect::<Float64Array>()),
        ],
    )
    .expect("a batch");
    let file = std::fs::File::create(path).expect("create");
    let props =
        parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(3)).build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

fn project(format: &str, events: &[Event]) -> TempProject {
    let file = format!("events.{format}");
    let accounts: String =
        std::iter::once("account_id\n".to_string()).chain((0..8).map(|n| format!("a{n}\n"))).collect();
    let toml = TOML.replace("EVENTS", &file);
    let p = TempProject::new(&[("segmenta.toml", &toml), ("accounts.csv", &accounts)]);
    match format {
        "csv" => std::fs::write(p.path().join(&file), csv(events)).expect("writes"),
        _ => parquet(&p.path().join(&file), events),
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn posted_events_count_as_the_end_of_the_events_file(
        events in proptest::collection::vec(event(), 1..40),
        split in 0usize..40,
        batches in 1usize..4,
    ) {
        let split = split.min(events.len());
        for format in ["csv", "parquet"] {
            let whole = project(format, &events);
            let posted = project(format, &events[..split]);
            let served = ServedProject::new(posted.load().expect("loads"));
            let rest: Vec<String> = events[split..].iter().map(json).collect();
            // Batches with ids, each posted twice (a retry): the second time appends nothing,
            // also from a server started afresh (the ids are read back from the log).
            for (n, chunk) in rest.chunks(rest.len().div_ceil(batches).max(1)).enumerate() {
                let id = format!("batch-{n}");
                let report = served.ingest_events(chunk, Some(&id)).expect("ingests");
                prop_assert_eq!((report.accepted, report.rejected.len(), report.duplicate), (chunk.len(), 0, false));
                let again = served.ingest_events(chunk, Some(&id)).expect("ingests");
                prop_assert!(again.duplicate && again.accepted == chunk.len());
                let restarted = ServedProject::new(posted.load().expect("loads"));
                prop_assert!(restarted.ingest_events(chunk, Some(&id)).expect("ingests").duplicate);
            }
            let expected = whole.run(AS_OF, BadRows::Strict).expect("runs");
            let got = posted.run(AS_OF, BadRows::Strict).expect("runs");
            let table = |p: &TempProject| std::fs::read(p.out().join("table.parquet")).expect("table.parquet");
            prop_assert!(table(&whole) == table(&posted), "{}: the traits differ", format);
            prop_assert_eq!(memberships(&whole), memberships(&posted), "{}", format);
            let (want, have) = (to_json(&expected.summary)["events"].clone(), to_json(&got.summary)["events"].clone());
            for count in ["read", "used", "ignored_unknown_entity", "ignored_after_as_of", "rejected"] {
                prop_assert_eq!(&want[count], &have[count], "{}: events.{}", format, count);
            }
            let posted_rows = (events.len() - split) as u64;
            prop_assert_eq!(have["posted"].as_u64().unwrap_or(0), posted_rows, "{}", format);
        }
    }
}
