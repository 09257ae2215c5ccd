//! Issue 11, "nothing lost without a loud word": identifier columns read as strings, keys of
//! different types refused by validate, unmatched keys warned about (errors with strict),
//! events without a key rejected, output names that would clash refused.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use segmenta_engine::{AsOf, BadRows, ErrorCode, ErrorKind, NoProgress, RunOptions};

use crate::support::{TempProject, to_json};

const HEAD: &str = r#"[project]
name = "t"
entity = "customer"
PROJECT_EXTRA

[entities.customer]
source = "customers.csv"
key = "id"
ENTITY_EXTRA

[events]
source = "EVENTS_FILE"
entity_key = "customer_id"
time = "ts"
EVENTS_EXTRA

[traits]
orders = "count()"
"#;

fn toml(project: &str, entity: &str, events_file: &str, events: &str) -> String {
    HEAD.replace("PROJECT_EXTRA", project)
        .replace("ENTITY_EXTRA", entity)
        .replace("EVENTS_FILE", events_file)
        .replace("EVENTS_EXTRA", events)
}

const TS: &str = "2024-01-01T00:00:00Z";

fn events_csv(keys: &[&str]) -> String {
    let mut text = String::from("customer_id,ts\n");
    for key in keys {
        text.push_str(&format!("{key},{TS}\n"));
    }
    text
}

fn run_with(
    p: &TempProject,
    bad_rows: BadRows,
    strict: bool,
) -> segmenta_engine::Result<segmenta_engine::RunReport> {
    let options = RunOptions {
        as_of: Some(AsOf::parse("2024-06-30").expect("a date")),
        output: Some(p.out()),
        bad_rows,
        threads: Some(2),
        strict,
        ..RunOptions::default()
    };
    segmenta_engine::run(&p.load()?, &options, &NoProgress)
}

fn warnings(report: &segmenta_engine::RunReport) -> Vec<(String, String)> {
    report.summary.warnings.iter().map(|w| (w.code.clone(), w.message.clone())).collect()
}

#[test]
fn identifier_columns_are_strings_so_leading_zeros_still_match() {
    // The customers' ids infer as strings (`A7` is not a number); the events' ids alone would
    // infer as integers (00123 -> 123) and match nothing. Read as strings, every event matches.
    let customers = "id,plan\n00123,pro\n00456,free\nA7,pro\n";
    let events = events_csv(&["00123", "00456", "00123", "007"]);
    let p = TempProject::new(&[
        ("segmenta.toml", &toml("", "", "events.csv", "")),
        ("customers.csv", customers),
        ("events.csv", &events),
    ]);
    let report = run_with(&p, BadRows::Strict, false).expect("runs");
    let summary = to_json(&report.summary);
    assert_eq!(summary["events"]["used"], 3, "{summary}");
    assert_eq!(summary["events"]["ignored_unknown_entity"], 1, "`007` is not `00123`: {summary}");
    let traits = segmenta_store::read_parquet(&p.out().join("traits.parquet")).expect("traits");
    let ids = arrow::compute::cast(traits.column(0), &DataType::Utf8).expect("text");
    let ids: Vec<&str> =
        ids.as_any().downcast_ref::<StringArray>().expect("strings").iter().flatten().collect();
    assert_eq!(ids, ["00123", "00456", "A7"], "ids keep their zeros");
}

#[test]
fn keys_of_different_declared_types_are_a_validate_error_naming_both_files() {
    let p = TempProject::new(&[
        ("segmenta.toml", &toml("", "columns = { id = \"int\" }", "events.csv", "")),
        ("customers.csv", "id,plan\n123,pro\n"),
        ("events.csv", &events_csv(&["123"])),
    ]);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("int key, string events key");
    let message = error.to_string();
    assert_eq!(error.kind(), ErrorKind::User, "{message}");
    assert!(
        message.contains(
            "the events' key `customer_id` in events.csv is string, but the key `id` of customers.csv is int"
        ),
        "{message}"
    );
    assert!(message.contains("segmenta.toml:12:10:"), "located at the [events] source line: {message}");
    assert!(message.contains("columns = { customer_id = \"int\" } in [events]"), "{message}");
}

#[test]
fn a_declared_conversion_makes_keys_of_both_files_match() {
    // Both sides declared int: `00123` and `123` are the same customer, as the user said.
    let p = TempProject::new(&[
        (
            "segmenta.toml",
            &toml("", "columns = { id = \"int\" }", "events.csv", "columns = { customer_id = \"int\" }"),
        ),
        ("customers.csv", "id,plan\n123,pro\n"),
        ("events.csv", &events_csv(&["00123", "123"])),
    ]);
    let report = run_with(&p, BadRows::Strict, false).expect("runs");
    assert_eq!(to_json(&report.summary)["events"]["used"], 2);
    assert!(report.summary.warnings.is_empty());
}

#[test]
fn a_float_key_is_an_error() {
    let p = TempProject::new(&[
        (
            "segmenta.toml",
            &toml("", "columns = { id = \"float\" }", "events.csv", "columns = { customer_id = \"float\" }"),
        ),
        ("customers.csv", "id,plan\n1.5,pro\n"),
        ("events.csv", &events_csv(&["1.5"])),
    ]);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("a float key");
    assert!(
        error.to_string().contains("the key `id` of customers.csv is float; keys are strings or integers"),
        "{error}"
    );
}

fn unknown_project(project_extra: &str) -> TempProject {
    // 2 of 5 events (40%) belong to no customer.
    let events = events_csv(&["c1", "c2", "c1", "zz9", "zz1"]);
    TempProject::new(&[
        ("segmenta.toml", &toml(project_extra, "", "events.csv", "")),
        ("customers.csv", "id,plan\nc1,pro\nc2,free\n"),
        ("events.csv", &events),
    ])
}

#[test]
fn unknown_event_keys_above_the_share_warn_with_the_smallest_keys() {
    let p = unknown_project("");
    let report = run_with(&p, BadRows::Strict, false).expect("a warning, not an error");
    let found = warnings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "unknown_event_keys");
    assert!(found[0].1.starts_with("2 of 5 events before the as-of instant (40.0%)"), "{}", found[0].1);
    assert!(found[0].1.ends_with(": zz1, zz9"), "sorted examples: {}", found[0].1);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.out().join("summary.json")).expect("summary")).expect("json");
    assert_eq!(written["warnings"][0]["code"], "unknown_event_keys", "summary.json keeps the warning");
}

#[test]
fn strict_makes_unknown_event_keys_an_error_and_writes_nothing() {
    let p = unknown_project("");
    let error = run_with(&p, BadRows::Strict, true).expect_err("strict");
    assert_eq!(error.code(), "unknown_event_keys");
    assert_eq!(error.kind(), ErrorKind::User);
    assert!(error.to_string().contains("--strict"), "{error}");
    assert!(!p.out().exists(), "nothing written");

    let p = unknown_project("strict = true");
    assert_eq!(
        run_with(&p, BadRows::Strict, false).expect_err("[project] strict").code(),
        "unknown_event_keys"
    );
}

#[test]
fn max_unknown_share_sets_the_threshold() {
    let p = unknown_project("max_unknown_share = 0.5");
    let report = run_with(&p, BadRows::Strict, true).expect("40% is below 50%");
    assert!(report.summary.warnings.is_empty());

    let p = unknown_project("max_unknown_share = 2.0");
    let error = p.load().expect_err("not a share");
    assert!(error.to_string().contains("max_unknown_share = 2 is not a share between 0 and 1"), "{error}");
}

#[test]
fn events_without_a_key_are_bad_rows_not_unknown_entities() {
    let events = events_csv(&["c1", "", "c2"]);
    let p = TempProject::new(&[
        ("segmenta.toml", &toml("", "", "events.csv", "")),
        ("customers.csv", "id,plan\nc1,pro\nc2,free\n"),
        ("events.csv", &events),
    ]);
    let error = run_with(&p, BadRows::Strict, false).expect_err("strict: a bad row");
    let message = error.to_string();
    assert_eq!(error.code(), "bad_input", "{message}");
    assert!(message.contains("events.csv") && message.contains("customer_id"), "{message}");
    assert!(message.contains("the event has no key (data row 2"), "{message}");

    let report = run_with(&p, BadRows::Reject, false).expect("reject mode");
    let events = to_json(&report.summary)["events"].clone();
    assert_eq!(events["read"], 3, "{events}");
    assert_eq!(events["used"], 2, "{events}");
    assert_eq!(events["ignored_unknown_entity"], 0, "{events}");
    assert_eq!(events["rejected"], 1, "{events}");
    let rejects = std::fs::read_to_string(p.out().join("rejects.csv")).expect("rejects.csv");
    assert!(
        rejects.contains("events.csv,2,column `customer_id`: the event has no key (data row 2)"),
        "{rejects}"
    );
}

fn write_events_parquet(path: &std::path::Path, keys: &[Option<&str>]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
    ]));
    let ts = AsOf::parse("2024-01-01").expect("a date").instant;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(keys.to_vec())),
            Arc::new(TimestampMicrosecondArray::from(vec![ts; keys.len()]).with_timezone("UTC")),
        ],
    )
    .expect("a batch");
    let file = std::fs::File::create(path).expect("create");
    let props =
        parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(2)).build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

#[test]
fn parquet_events_without_a_key_are_rejected_with_their_row() {
    let p = TempProject::new(&[
        ("segmenta.toml", &toml("", "", "events.parquet", "")),
        ("customers.csv", "id,plan\nc1,pro\nc2,free\n"),
    ]);
    // Row groups of two rows: the rows without a key are in the second and third groups.
    write_events_parquet(&p.path().join("events.parquet"), &[Some("c1"), Some("c2"), None, Some("c1"), None]);
    let error = run_with(&p, BadRows::Strict, false).expect_err("strict");
    assert!(error.to_string().contains("the event has no key (data row 3; 2 events have none)"), "{error}");

    let report = run_with(&p, BadRows::Reject, false).expect("reject mode");
    let events = to_json(&report.summary)["events"].clone();
    assert_eq!((events["read"].as_u64(), events["used"].as_u64()), (Some(5), Some(3)), "{events}");
    assert_eq!((events["ignored"].as_u64(), events["rejected"].as_u64()), (Some(0), Some(2)), "{events}");
    let rejects = std::fs::read_to_string(p.out().join("rejects.csv")).expect("rejects.csv");
    assert!(rejects.contains("events.parquet,3,") && rejects.contains("events.parquet,5,"), "{rejects}");
}

const FAMILY: &str = r#"[project]
name = "t"
entity = "account"

[entities.account]
source = "accounts.csv"
key = "account_id"
hierarchy = "parent_account"

[entities.contact]
source = "contacts.csv"
key = "contact_id"
parent = "account"

[traits]
contacts = { expr = "count()", over = "contact" }
"#;

#[test]
fn child_rows_and_hierarchy_parents_that_match_nothing_are_reported() {
    let p = TempProject::new(&[
        ("segmenta.toml", FAMILY),
        ("accounts.csv", "account_id,parent_account\na1,\na2,a1\na3,gone\n"),
        ("contacts.csv", "contact_id,account_id\nk1,a1\nk2,a2\nk3,a9\nk4,\n"),
    ]);
    let report = run_with(&p, BadRows::Strict, false).expect("warnings");
    let found = warnings(&report);
    let codes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, ["unknown_hierarchy_parents", "unknown_parent_keys"], "{found:?}");
    assert!(
        found[0].1.contains("1 rows of accounts.csv name a parent in `parent_account`"),
        "{}",
        found[0].1
    );
    assert!(found[0].1.ends_with(": gone"), "{}", found[0].1);
    assert!(
        found[1].1.starts_with("1 of 3 rows of contacts.csv (33.3%) link to a `account`"),
        "{}",
        found[1].1
    );
    assert!(found[1].1.ends_with("`account_id` = a9"), "{}", found[1].1);
    let error = run_with(&p, BadRows::Strict, true).expect_err("strict");
    assert_eq!(error.code(), "unknown_hierarchy_parents");
}

#[test]
fn output_names_that_would_clash_are_located_errors() {
    let base = toml("", "", "events.csv", "");
    let files = |toml: String| {
        TempProject::new(&[
            ("segmenta.toml", toml.as_str()),
            ("customers.csv", "id,plan\nc1,pro\n"),
            ("events.csv", &events_csv(&["c1"])),
        ])
    };
    let p = files(base.replace("orders = \"count()\"", "orders = \"count()\"\nentity_id = \"count()\""));
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("entity_id");
    assert!(
        error.to_string().contains("segmenta.toml:19:13: trait `entity_id` takes the name of the id column"),
        "{error}"
    );

    let p = files(base.replace("orders = \"count()\"", "orders = \"count()\"\n\"\" = \"count()\""));
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("an empty name");
    assert!(error.to_string().contains("a trait has an empty name"), "{error}");
}

const LOG_ONLY: &str = r#"[project]
name = "t"
entity = "customer"

[entities.customer]
from_events = true
key = "customer_id"

[events]
source = "EVENTS_FILE"
entity_key = "customer_id"
time = "ts"

[traits]
orders = "count()"

[segments.repeat]
rule = "orders >= 2"
"#;

#[test]
fn a_project_from_a_transaction_log_alone_has_one_entity_per_key() {
    let events = events_csv(&["00123", "c2", "00123", "c3", "c3", "c3"]);
    let p = TempProject::new(&[
        ("segmenta.toml", &LOG_ONLY.replace("EVENTS_FILE", "orders.csv")),
        ("orders.csv", &events),
    ]);
    let report = run_with(&p, BadRows::Strict, false).expect("runs without a file of customers");
    let summary = to_json(&report.summary);
    assert_eq!(summary["entities"], 3, "{summary}");
    assert_eq!(summary["entity_rows"]["file"], "orders.csv", "{summary}");
    assert_eq!(summary["events"]["used"], 6, "{summary}");
    let mut repeat = segmenta_engine::members(&p.load().expect("loads"), "repeat").expect("members");
    repeat.sort();
    assert_eq!(repeat, ["00123", "c3"]);

    let p = TempProject::new(&[("segmenta.toml", &LOG_ONLY.replace("EVENTS_FILE", "orders.parquet"))]);
    write_events_parquet(&p.path().join("orders.parquet"), &[Some("a"), Some("b"), Some("a"), None]);
    let report = run_with(&p, BadRows::Reject, false).expect("Parquet events");
    assert_eq!(to_json(&report.summary)["entities"], 2, "a missing key is no entity");
    assert_eq!(segmenta_engine::members(&p.load().expect("loads"), "repeat").expect("members"), ["a"]);
}

#[test]
fn from_events_needs_the_events_key_and_no_source() {
    let wrong_key =
        LOG_ONLY.replace("EVENTS_FILE", "orders.csv").replace("\nkey = \"customer_id\"", "\nkey = \"id\"");
    let p = TempProject::new(&[("segmenta.toml", &wrong_key), ("orders.csv", &events_csv(&["a"]))]);
    let error = p.load().expect_err("the key must be the events' entity_key");
    assert!(
        error.to_string().contains("its key is the events' entity_key `customer_id`, not `id`"),
        "{error}"
    );
    let both = LOG_ONLY
        .replace("EVENTS_FILE", "orders.csv")
        .replace("from_events = true", "from_events = true\nsource = \"orders.csv\"");
    let p = TempProject::new(&[("segmenta.toml", &both), ("orders.csv", &events_csv(&["a"]))]);
    assert!(p.load().expect_err("both").to_string().contains("has both a `source` and `from_events = true`"));
    let neither = LOG_ONLY.replace("EVENTS_FILE", "orders.csv").replace("from_events = true\n", "");
    let p = TempProject::new(&[("segmenta.toml", &neither), ("orders.csv", &events_csv(&["a"]))]);
    assert!(p.load().expect_err("neither").to_string().contains("entity `customer` has no `source`"));
}

#[test]
fn a_time_column_declared_as_date_reads_as_midnight_utc() {
    let events = "customer_id,day\nc1,2024-01-01\nc1,2024-06-30\nc2,2024-07-01\n";
    let toml =
        toml("", "", "events.csv", "columns = { day = \"date\" }").replace("time = \"ts\"", "time = \"day\"");
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("customers.csv", "id,plan\nc1,pro\nc2,free\n"),
        ("events.csv", events),
    ]);
    let report = run_with(&p, BadRows::Strict, false).expect("a declared date is a valid time column");
    let events = to_json(&report.summary)["events"].clone();
    assert_eq!(events["used"], 2, "as of 2024-06-30 the whole day counts, 2024-07-01 does not: {events}");
    assert_eq!(events["ignored_after_as_of"], 1, "{events}");
}

#[test]
fn a_string_that_the_data_holds_in_other_case_gets_a_hint() {
    let toml = format!(
        "{}\n[segments.emea]\nrule = \"region = 'emea' or region in ('apac', 'Nowhere')\"\n",
        toml("", "", "events.csv", "")
    );
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("customers.csv", "id,region\nc1,EMEA\nc2,APAC\nc3,emeA\n"),
        ("events.csv", &events_csv(&["c1"])),
    ]);
    let report = run_with(&p, BadRows::Strict, true).expect("a hint is not an error, even when strict");
    let found = warnings(&report);
    let codes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, ["case_mismatch", "case_mismatch"], "{found:?}");
    assert!(
        found[0]
            .1
            .contains("compares `region` with 'apac', which no row of customers.csv holds; it holds 'APAC'"),
        "{found:?}"
    );
    assert!(
        found[1].1.contains("with 'emea'") && found[1].1.ends_with("it holds 'EMEA'"),
        "the first spelling in order: {found:?}"
    );
}

#[test]
fn a_lookup_table_adds_attributes_and_counts_unmatched_keys() {
    let toml = format!(
        "{}\n[lookups.regions]\nsource = \"regions.csv\"\nkey = \"country\"\n\n[segments.emea]\nrule = \"region = 'EMEA'\"\n",
        toml("", "", "events.csv", "")
    );
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("customers.csv", "id,country\nc1,FR\nc2,DE\nc3,XX\nc4,\nc5,US\n"),
        ("regions.csv", "country,region,eu\nFR,EMEA,true\nDE,EMEA,true\nUS,NA,false\n"),
        ("events.csv", &events_csv(&["c1"])),
    ]);
    let report = run_with(&p, BadRows::Strict, false).expect("runs");
    let mut emea = segmenta_engine::members(&p.load().expect("loads"), "emea").expect("members");
    emea.sort();
    assert_eq!(emea, ["c1", "c2"]);
    let found = warnings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "unknown_lookup_keys");
    assert!(
        found[0].1.contains(
            "1 of 4 rows of customers.csv (25.0%) have a `country` that regions.csv does not hold: XX"
        ),
        "{found:?}"
    );
    let table = segmenta_store::read_parquet(&p.out().join("table.parquet")).expect("the evaluation table");
    assert!(table.column_by_name("eu").is_some(), "lookup columns are attributes");

    // A column on both sides is refused; so is a key of another type.
    let clash = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("customers.csv", "id,country,region\nc1,FR,x\n"),
        ("regions.csv", "country,region\nFR,EMEA\n"),
        ("events.csv", &events_csv(&["c1"])),
    ]);
    let error = segmenta_engine::validate(&clash.load().expect("loads")).expect_err("a clash");
    assert!(
        error.to_string().contains("the column `region` of regions.csv is also a column of customers.csv"),
        "{error}"
    );
}

#[test]
fn an_integer_sum_past_64_bits_names_the_trait() {
    let toml = toml("", "", "events.csv", "columns = { qty = \"int\" }")
        .replace("orders = \"count()\"", "orders = \"count()\"\nunits = \"sum(qty)\"");
    let events =
        "customer_id,ts,qty\nc1,2024-01-01T00:00:00Z,9223372036854775807\nc1,2024-01-02T00:00:00Z,1\n";
    let p =
        TempProject::new(&[("segmenta.toml", &toml), ("customers.csv", "id\nc1\n"), ("events.csv", events)]);
    let error = run_with(&p, BadRows::Strict, false).expect_err("an overflow");
    let message = error.to_string();
    assert_eq!(error.kind(), ErrorKind::User, "{message}");
    assert!(
        message.contains("segmenta.toml:19:10: trait `units`: the sum is too large for a 64-bit integer"),
        "{message}"
    );
    assert!(message.contains("hint: sum a float instead"), "{message}");
}

#[test]
fn a_time_format_reads_compact_dates_and_epoch_seconds() {
    for (format, times) in [
        ("%Y%m%d", ["20240101", "20240630", "20240701"]),
        ("epoch_seconds", ["1704067200", "1719705600", "1719792000"]),
        ("epoch_millis", ["1704067200000", "1719705600000", "1719792000000"]),
        ("%d/%m/%Y %H:%M", ["01/01/2024 10:00", "30/06/2024 23:59", "01/07/2024 00:00"]),
    ] {
        let events = format!("customer_id,ts\nc1,{}\nc1,{}\nc2,{}\n", times[0], times[1], times[2]);
        let toml = toml("", "", "events.csv", &format!("time_format = \"{format}\""));
        let p = TempProject::new(&[
            ("segmenta.toml", &toml),
            ("customers.csv", "id\nc1\nc2\n"),
            ("events.csv", &events),
        ]);
        let report = run_with(&p, BadRows::Strict, false).unwrap_or_else(|e| panic!("{format}: {e}"));
        let events = to_json(&report.summary)["events"].clone();
        assert_eq!(
            (events["used"].as_u64(), events["ignored_after_as_of"].as_u64()),
            (Some(2), Some(1)),
            "{format}: {events}"
        );
    }
}

#[test]
fn a_bad_time_format_and_values_that_will_not_parse_are_located() {
    let toml_text = toml("", "", "events.csv", "time_format = \"%Q\"");
    let p = TempProject::new(&[
        ("segmenta.toml", &toml_text),
        ("customers.csv", "id\nc1\n"),
        ("events.csv", "customer_id,ts\nc1,20240101\n"),
    ]);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("not a pattern");
    assert!(
        error.to_string().contains("[events] time_format: `%Q` is not a valid strftime pattern"),
        "{error}"
    );

    // validate reads the first events as a run would: the first value that will not parse is
    // reported with its line and the count of the others.
    let toml_text = toml("", "", "events.csv", "time_format = \"%Y%m%d\"");
    let events = "customer_id,ts\nc1,20240101\nc1,2024-01-02\nc1,20240103\nc1,x\n";
    let p = TempProject::new(&[
        ("segmenta.toml", &toml_text),
        ("customers.csv", "id\nc1\n"),
        ("events.csv", events),
    ]);
    let plan = segmenta_engine::validate(&p.load().expect("loads")).expect("the project file is valid");
    let error = segmenta_engine::check_sample(&plan, false).expect_err("bad values in the sample");
    let message = error.to_string();
    assert!(message.contains("events.csv:3:"), "the first bad line: {message}");
    assert!(message.contains("cannot read \"2024-01-02\" as a time in the format `%Y%m%d`"), "{message}");
    assert!(message.contains("(and 1 more of the first 4 rows)"), "{message}");
}

#[test]
fn validate_warns_about_unknown_keys_in_its_sample() {
    let p = unknown_project("");
    let plan = segmenta_engine::validate(&p.load().expect("loads")).expect("valid");
    let report = segmenta_engine::check_sample(&plan, false).expect("a warning");
    assert_eq!(report.rows, 5);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].message.starts_with("2 of the first 5 events of events.csv (40.0%)"),
        "{:?}",
        report.warnings
    );
    let error = segmenta_engine::check_sample(&plan, true).expect_err("strict");
    assert_eq!(error.code(), "unknown_event_keys");
}
