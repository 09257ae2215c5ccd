//! segmenta's demo company: a synthetic but realistic B2B SaaS customer base, reproducible by
//! seed, written as a complete segmenta project (data files and `segmenta.toml`).
//!
//! - `data/accounts.parquet`: firmographics (industry, employees, revenue, country, region),
//!   plan, seats, MRR/ARR, signup date, parent account, technographics;
//! - `data/contacts.parquet`: role, seniority, department, decision maker, age band, consents;
//! - `data/events.parquet`: logins, feature use, invoices, tickets, e-mail, web visits, survey
//!   answers and subscription changes from 2023-01-01 to 2025-12-31, in time order;
//! - `lists/strategic_accounts.csv`: a static list;
//! - `data/csms.csv`: the customer-success roster of `[coverage]`;
//! - `segmenta.toml`: a segment for every segmentation model.
//!
//! Events are simulated month by month for all accounts (in parallel) and streamed to Parquet a
//! month at a time, so memory stays bounded at any size: 1,000,000 accounts give about 100
//! million events.

mod model;
mod project;
mod simulate;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

pub use model::{MONTHS, window_end, window_start};
pub use project::{PREDICTIVE_MIN_ACCOUNTS, first_line as project_first_line, project_toml};

/// The demo's as-of date: the last day of its data.
pub const AS_OF: &str = "2025-12-31";

/// The default number of accounts: the whole demo runs in seconds.
pub const DEFAULT_ACCOUNTS: u64 = 2_000;

/// Accounts simulated together in one parallel task.
const CHUNK: usize = 2048;

/// What went wrong writing the demo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Parquet encoding failed.
    #[error("cannot write {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building Arrow data failed (a bug).
    #[error("internal error building demo data: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A bad option.
    #[error("{0}")]
    Options(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How big and which demo.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Number of accounts.
    pub accounts: u64,
    /// The seed: the same seed gives the same data.
    pub seed: u64,
    /// Worker threads for the simulation.
    pub threads: usize,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Accounts written.
    pub accounts: u64,
    /// Contacts written.
    pub contacts: u64,
    /// Events written.
    pub events: u64,
    /// The files, relative to the project folder.
    pub files: Vec<String>,
}

/// Reports progress: the step and how far it is (`done` of `total` units).
pub type ProgressFn<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// A Parquet file written under a temporary name and renamed when complete.
struct ParquetOut {
    writer: ArrowWriter<File>,
    temp: PathBuf,
    path: PathBuf,
}

impl ParquetOut {
    fn create(path: &Path, schema: SchemaRef) -> Result<ParquetOut> {
        let temp = path.with_extension("parquet.partial");
        let file = File::create(&temp).map_err(io(&temp))?;
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let writer = ArrowWriter::try_new(file, schema, Some(props))
            .map_err(|source| Error::Parquet { path: path.to_path_buf(), source })?;
        Ok(ParquetOut { writer, temp, path: path.to_path_buf() })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|source| Error::Parquet { path: self.path.clone(), source })
    }

    fn finish(self) -> Result<()> {
        let file =
            self.writer.into_inner().map_err(|source| Error::Parquet { path: self.path.clone(), source })?;
        file.sync_all().map_err(io(&self.path))?;
        std::fs::rename(&self.temp, &self.path).map_err(io(&self.path))
    }
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn days_since_epoch(date: chrono::NaiveDate) -> i32 {
    (date - chrono::NaiveDate::default()).num_days() as i32
}

fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("contact_id", DataType::Utf8, true),
        Field::new("ts", utc_micros(), false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("feature", DataType::Utf8, true),
        Field::new("page", DataType::Utf8, true),
        Field::new("plan", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("need", DataType::Utf8, true),
        Field::new("pain_point", DataType::Utf8, true),
        Field::new("nps", DataType::Int64, true),
    ]))
}

fn optional<'a>(names: &[&'a str], index: u8) -> Option<&'a str> {
    names.get(index as usize).copied()
}

fn events_batch(events: &[simulate::Event], account_ids: &[String]) -> Result<RecordBatch> {
    let n = events.len();
    let mut account = StringBuilder::with_capacity(n, n * 8);
    let mut contact = StringBuilder::with_capacity(n, n * 11);
    let mut kind = StringBuilder::with_capacity(n, n * 8);
    let mut feature = StringBuilder::with_capacity(n, n * 4);
    let mut page = StringBuilder::with_capacity(n, n * 2);
    let mut plan = StringBuilder::with_capacity(n, n);
    let mut need = StringBuilder::with_capacity(n, n);
    let mut pain = StringBuilder::with_capacity(n, n);
    let mut contact_text = String::with_capacity(16);
    let plans: Vec<&str> = model::PLANS.iter().map(|p| p.0).collect();
    for e in events {
        account.append_value(&account_ids[e.account as usize]);
        if e.contact == u8::MAX {
            contact.append_null();
        } else {
            contact_text.clear();
            contact_text.push('C');
            contact_text.push_str(&account_ids[e.account as usize][1..]);
            contact_text.push('-');
            contact_text.push(char::from(b'0' + e.contact / 100));
            contact_text.push(char::from(b'0' + e.contact / 10 % 10));
            contact_text.push(char::from(b'0' + e.contact % 10));
            contact.append_value(&contact_text);
        }
        kind.append_value(e.kind.name());
        feature.append_option(optional(&model::FEATURES, e.feature));
        page.append_option(optional(&model::PAGES, e.page));
        plan.append_option(optional(&plans, e.plan));
        need.append_option(optional(&model::NEEDS, e.need));
        pain.append_option(optional(&model::PAINS, e.pain));
    }
    let ts: TimestampMicrosecondArray = events.iter().map(|e| e.ts).collect::<Vec<_>>().into();
    let amount: Float64Array = events.iter().map(|e| (!e.amount.is_nan()).then_some(e.amount)).collect();
    let nps: Int64Array = events.iter().map(|e| (e.nps != u8::MAX).then_some(i64::from(e.nps))).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(account.finish()),
        Arc::new(contact.finish()),
        Arc::new(ts.with_timezone("UTC")),
        Arc::new(kind.finish()),
        Arc::new(feature.finish()),
        Arc::new(page.finish()),
        Arc::new(plan.finish()),
        Arc::new(amount),
        Arc::new(need.finish()),
        Arc::new(pain.finish()),
        Arc::new(nps),
    ];
    Ok(RecordBatch::try_new(events_schema(), columns)?)
}

fn contacts_batch(states: &[simulate::State], account_ids: &[String]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("contact_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("seniority", DataType::Utf8, false),
        Field::new("department", DataType::Utf8, false),
        Field::new("decision_maker", DataType::Boolean, false),
        Field::new("age_band", DataType::Utf8, false),
        Field::new("consent_email_marketing", DataType::Boolean, false),
        Field::new("consent_product_updates", DataType::Boolean, false),
        Field::new("consent_profiling", DataType::Boolean, false),
        Field::new("created_date", DataType::Date32, false),
    ]));
    let mut builders: Vec<StringBuilder> = (0..7).map(|_| StringBuilder::new()).collect();
    let (mut dm, mut email_ok, mut updates_ok, mut profiling_ok, mut created) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for state in states {
        let index = state.index;
        for (k, c) in state.profile.contacts.iter().enumerate() {
            let id = model::contact_id(index, k);
            let role = model::ROLES[c.role as usize];
            builders[2].append_value(format!(
                "{}@{}.example",
                id.to_lowercase(),
                account_ids[index as usize].to_lowercase()
            ));
            builders[0].append_value(id);
            builders[1].append_value(&account_ids[index as usize]);
            builders[3].append_value(role.0);
            builders[4].append_value(role.2);
            builders[5].append_value(role.3);
            builders[6].append_value(model::AGE_BANDS[c.age_band as usize]);
            dm.push(c.decision_maker);
            email_ok.push(c.consent_email);
            updates_ok.push(c.consent_updates);
            profiling_ok.push(c.consent_profiling);
            let day = (state.profile.signup + chrono::Duration::days(c.created_after_days))
                .min(model::window_end());
            created.push(days_since_epoch(day));
        }
    }
    let mut strings: Vec<ArrayRef> =
        builders.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef).collect();
    let age = strings.pop().expect("seven string columns");
    let columns: Vec<ArrayRef> = strings
        .into_iter()
        .chain([
            Arc::new(BooleanArray::from(dm)) as ArrayRef,
            age,
            Arc::new(BooleanArray::from(email_ok)),
            Arc::new(BooleanArray::from(updates_ok)),
            Arc::new(BooleanArray::from(profiling_ok)),
            Arc::new(Date32Array::from(created)),
        ])
        .collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn accounts_batch(states: &[simulate::State], account_ids: &[String]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("industry", DataType::Utf8, false),
        Field::new("employees", DataType::Int64, false),
        Field::new("annual_revenue", DataType::Float64, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
        Field::new("seats", DataType::Int64, false),
        Field::new("mrr", DataType::Float64, false),
        Field::new("arr", DataType::Float64, false),
        Field::new("signup_date", DataType::Date32, false),
        Field::new("parent_account_id", DataType::Utf8, true),
        Field::new("crm", DataType::Utf8, false),
        Field::new("cloud", DataType::Utf8, false),
        Field::new("integrations_enabled", DataType::Int64, false),
        Field::new("uses_sso", DataType::Boolean, false),
    ]));
    let text = |f: &dyn Fn(&simulate::State) -> String| -> ArrayRef {
        let mut b = StringBuilder::new();
        for s in states {
            b.append_value(f(s));
        }
        Arc::new(b.finish())
    };
    let parent: ArrayRef = {
        let mut b = StringBuilder::new();
        for s in states {
            b.append_option(s.profile.parent.map(|p| account_ids[p as usize].clone()));
        }
        Arc::new(b.finish())
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|s| account_ids[s.index as usize].clone()),
        text(&|s| s.profile.name.clone()),
        text(&|s| model::INDUSTRIES[s.profile.industry as usize].0.to_string()),
        Arc::new(states.iter().map(|s| s.profile.employees as i64).collect::<Int64Array>()),
        Arc::new(states.iter().map(|s| s.profile.revenue).collect::<Float64Array>()),
        text(&|s| model::COUNTRIES[s.profile.country as usize].0.to_string()),
        text(&|s| model::COUNTRIES[s.profile.country as usize].1.to_string()),
        text(&|s| model::PLANS[s.plan as usize].0.to_string()),
        Arc::new(states.iter().map(|s| i64::from(s.seats)).collect::<Int64Array>()),
        Arc::new(states.iter().map(|s| s.mrr()).collect::<Float64Array>()),
        Arc::new(states.iter().map(|s| 12.0 * s.mrr()).collect::<Float64Array>()),
        Arc::new(states.iter().map(|s| Some(days_since_epoch(s.profile.signup))).collect::<Date32Array>()),
        parent,
        text(&|s| model::CRMS[s.profile.crm as usize].0.to_string()),
        text(&|s| model::CLOUDS[s.profile.cloud as usize].0.to_string()),
        Arc::new(states.iter().map(|s| i64::from(s.profile.integrations)).collect::<Int64Array>()),
        Arc::new(states.iter().map(|s| Some(s.profile.uses_sso)).collect::<BooleanArray>()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Writes the demo project into `dir` (created if needed; existing demo files are replaced).
pub fn generate(dir: &Path, options: &DemoOptions, progress: ProgressFn<'_>) -> Result<DemoReport> {
    if options.accounts == 0 || options.accounts > 50_000_000 {
        return Err(Error::Options(format!(
            "--accounts {} is out of range: use 1 to 50000000",
            options.accounts
        )));
    }
    let data = dir.join("data");
    let lists = dir.join("lists");
    for folder in [&data, &lists] {
        std::fs::create_dir_all(folder).map_err(io(folder))?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .build()
        .map_err(|e| Error::Options(format!("cannot start {} threads: {e}", options.threads)))?;
    let n = options.accounts as usize;
    let seed = options.seed;
    let account_ids: Vec<String> = (0..options.accounts).map(model::account_id).collect();

    progress("creating accounts and contacts", 0, options.accounts);
    let mut states: Vec<simulate::State> = pool
        .install(|| (0..options.accounts).into_par_iter().map(|i| simulate::State::new(seed, i)).collect());
    let mut contacts = 0u64;
    let contacts_path = data.join("contacts.parquet");
    let mut contacts_out: Option<ParquetOut> = None;
    for chunk in states.chunks(64 * CHUNK) {
        let batch = contacts_batch(chunk, &account_ids)?;
        contacts += batch.num_rows() as u64;
        match &mut contacts_out {
            Some(out) => out.write(&batch)?,
            None => {
                let mut out = ParquetOut::create(&contacts_path, batch.schema())?;
                out.write(&batch)?;
                contacts_out = Some(out);
            }
        }
    }
    if let Some(out) = contacts_out {
        out.finish()?;
    }

    let events_path = data.join("events.parquet");
    let mut events_out = ParquetOut::create(&events_path, events_schema())?;
    let mut event_count = 0u64;
    for m in 0..MONTHS {
        progress("simulating events month by month", u64::from(m), u64::from(MONTHS));
        let mut events: Vec<simulate::Event> = pool.install(|| {
            states
                .par_chunks_mut(CHUNK)
                .flat_map_iter(|chunk| {
                    let mut out = Vec::new();
                    for state in chunk {
                        simulate::month(seed, m, state, &mut out);
                    }
                    out
                })
                .collect()
        });
        // Time order, ties broken by account, contact and type, so that the file is the same
        // whatever the thread count.
        pool.install(|| {
            events.par_sort_unstable_by(|a, b| {
                (a.ts, a.account, a.contact, a.kind).cmp(&(b.ts, b.account, b.contact, b.kind))
            })
        });
        event_count += events.len() as u64;
        for slice in events.chunks(1 << 20) {
            events_out.write(&events_batch(slice, &account_ids)?)?;
        }
    }
    events_out.finish()?;
    progress("simulating events month by month", u64::from(MONTHS), u64::from(MONTHS));

    let accounts_path = data.join("accounts.parquet");
    let mut accounts_out =
        ParquetOut::create(&accounts_path, accounts_batch(&states[..0], &account_ids)?.schema())?;
    for chunk in states.chunks(64 * CHUNK) {
        accounts_out.write(&accounts_batch(chunk, &account_ids)?)?;
    }
    accounts_out.finish()?;

    // A static list: the largest accounts by ARR that are still customers.
    let mut by_arr: Vec<&simulate::State> = states.iter().filter(|s| s.mrr() > 0.0).collect();
    by_arr.sort_by(|a, b| b.mrr().total_cmp(&a.mrr()).then(a.index.cmp(&b.index)));
    let mut list = String::from("entity_id\n");
    let mut strategic: Vec<&str> =
        by_arr.iter().take(15.min(n)).map(|s| account_ids[s.index as usize].as_str()).collect();
    strategic.sort_unstable();
    for id in strategic {
        list.push_str(id);
        list.push('\n');
    }
    write_file(&lists.join("strategic_accounts.csv"), list.as_bytes())?;
    // The CS roster of `[coverage]`: as many CSMs per engagement model as its accounts need at
    // the model's ratio, one short in high touch (so that `segmenta coverage` shows a shortfall).
    let arr = |s: &&simulate::State| 12.0 * s.mrr();
    let high = states.iter().filter(|s| arr(s) >= project::HIGH_TOUCH_ARR).count() as u64;
    let low = states
        .iter()
        .filter(|s| arr(s) >= project::LOW_TOUCH_ARR && arr(s) < project::HIGH_TOUCH_ARR)
        .count() as u64;
    let tech = states.iter().filter(|s| arr(s) > 0.0 && arr(s) < project::LOW_TOUCH_ARR).count() as u64;
    let mut roster = String::from("id,name,model,capacity\n");
    let mut number = 0;
    for (model, accounts, ratio, fewer) in [
        ("high_touch", high, project::HIGH_TOUCH_RATIO, 1),
        ("low_touch", low, project::LOW_TOUCH_RATIO, 0),
        ("tech_touch", tech, project::TECH_TOUCH_RATIO, 0),
    ] {
        for k in 0..accounts.div_ceil(ratio).saturating_sub(fewer).max(1) {
            number += 1;
            roster.push_str(&format!("csm{number:03},{} CSM {},{model},\n", model.replace('_', "-"), k + 1));
        }
    }
    write_file(&data.join("csms.csv"), roster.as_bytes())?;
    write_file(&dir.join("segmenta.toml"), project::project_toml(options.accounts).as_bytes())?;
    write_file(&dir.join("README.md"), project::readme(options, contacts, event_count).as_bytes())?;
    Ok(DemoReport {
        accounts: options.accounts,
        contacts,
        events: event_count,
        files: [
            "segmenta.toml",
            "README.md",
            "data/accounts.parquet",
            "data/contacts.parquet",
            "data/events.parquet",
            "data/csms.csv",
            "lists/strategic_accounts.csv",
        ]
        .map(String::from)
        .to_vec(),
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("partial");
    std::fs::write(&temp, bytes).map_err(io(&temp))?;
    std::fs::rename(&temp, path).map_err(io(path))
}
