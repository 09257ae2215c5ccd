//! `init`: a starter `segmenta.toml` scaffolded from the user's data files, then validated.
//!
//! Only headers and type samples are read (as `validate` does). The guesses are deliberately
//! plain and written as comments in the file, so a user sees what was assumed:
//!
//! - an **entity** is a file with a key column named `id`, `<stem>_id` or `<singular stem>_id`
//!   (`accounts.csv` → `account_id`); its name is the singular of the file's stem;
//! - the **events** are the file with a timestamp (or date) column that carries an entity's key
//!   column and is not itself keyed by its own name (`events.csv` with `account_id` and `ts`);
//!   the entity its key names is the project's entity;
//! - an entity holding another entity's key column is that entity's child (`parent`);
//! - a string column named like a type (`event_type`, `type`, `event`, `action`) is the events'
//!   `type`, and a numeric one named like an amount (`amount`, `revenue`, `price`, `value`,
//!   `total`) feeds `[rfm]`.
//!
//! With no file keyed that way, a timed file with an `*_id` column is a transaction log alone:
//! its keys are the entity (`from_events = true`). Otherwise init says which files it found
//! and what it expected.

use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use segmenta_core::ValueType;
use segmenta_core::config::SourceFormat;
use segmenta_query::ingest::{self, SourceSpec, TableSchema};

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::project::{PROJECT_FILE, Project};

/// Options of `segmenta init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The project folder to write `segmenta.toml` into.
    pub project: PathBuf,
    /// The folder holding the data files; default: the project folder.
    pub from: Option<PathBuf>,
    /// Replace an existing `segmenta.toml`.
    pub force: bool,
}

/// What `init` wrote.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The project file written.
    pub file: PathBuf,
    /// The entities found: name, file (as written in the project file), key.
    pub entities: Vec<(String, String, String)>,
    /// The events file, if one was found.
    pub events: Option<String>,
    /// The validated plan of the new project.
    pub plan: Plan,
}

/// One data file as init sees it.
struct Found {
    /// The path as the project file will name it.
    source: String,
    stem: String,
    schema: TableSchema,
    /// Integer columns named like times whose sampled values all read as one time format
    /// (`19970101`: `%Y%m%d`; ten digits: epoch seconds; thirteen: epoch milliseconds).
    coded_times: Vec<(String, &'static str)>,
}

impl Found {
    fn has(&self, column: &str) -> bool {
        self.schema.get(column).is_some()
    }

    /// The file's own key column, if it is named after the file.
    fn own_key(&self) -> Option<String> {
        let singular = singular(&self.stem);
        [format!("{}_id", self.stem), format!("{singular}_id"), "id".to_string()]
            .into_iter()
            .find(|c| self.has(c))
    }

    fn time_column(&self) -> Option<String> {
        const NAMES: [&str; 10] = [
            "ts",
            "time",
            "timestamp",
            "event_time",
            "occurred_at",
            "created_at",
            "date",
            "order_date",
            "datetime",
            "at",
        ];
        let timed = |ty: ValueType| matches!(ty, ValueType::Timestamp | ValueType::Date);
        let named = NAMES.iter().find(|n| self.schema.get(n).is_some_and(timed)).map(|n| n.to_string());
        let coded = || NAMES.iter().find(|n| self.time_format(n).is_some()).map(|n| n.to_string());
        named.or_else(coded).or_else(|| {
            self.schema.columns.iter().find(|(_, ty)| *ty == ValueType::Timestamp).map(|(n, _)| n.clone())
        })
    }

    /// The time format of a column of coded times, if it is one.
    fn time_format(&self, column: &str) -> Option<&'static str> {
        self.coded_times.iter().find(|(c, _)| c == column).map(|(_, f)| *f)
    }

    fn column_like(&self, names: &[&str], numeric: bool) -> Option<String> {
        names
            .iter()
            .find(|n| {
                self.schema
                    .get(n)
                    .is_some_and(|ty| if numeric { ty.is_numeric() } else { ty == ValueType::String })
            })
            .map(|n| n.to_string())
    }
}

/// `accounts` → `account`, `companies` → `company`, `data` → `data`.
fn singular(stem: &str) -> String {
    if let Some(base) = stem.strip_suffix("ies") {
        return format!("{base}y");
    }
    match stem.strip_suffix('s') {
        Some(base) if !base.ends_with('s') && !base.is_empty() => base.to_string(),
        _ => stem.to_string(),
    }
}

/// A name usable as a TOML bare key and a rule identifier.
fn identifier(name: &str) -> String {
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if cleaned.starts_with(|c: char| c.is_ascii_digit()) || cleaned.is_empty() {
        format!("e_{cleaned}")
    } else {
        cleaned
    }
}

/// Integer columns of `schema` named like times whose first rows all read as one time format.
fn coded_times(spec: &SourceSpec, schema: &TableSchema) -> Result<Vec<(String, &'static str)>> {
    let candidates: Vec<&String> = schema
        .columns
        .iter()
        .filter(|(name, ty)| {
            *ty == ValueType::Int
                && ["date", "time", "ts", "day", "timestamp"].iter().any(|t| name.contains(t))
        })
        .map(|(name, _)| name)
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let head = ingest::load_head(spec, segmenta_query::ingest::BadRows::Reject, 100)?;
    let mut coded = Vec::new();
    for name in candidates {
        let mut values = Vec::new();
        for batch in &head.batches {
            if let Some(column) = batch.column_by_name(name) {
                let column = column.as_primitive::<arrow::datatypes::Int64Type>();
                values.extend(column.iter().flatten());
            }
        }
        let all = |f: &dyn Fn(i64) -> bool| !values.is_empty() && values.iter().all(|v| f(*v));
        let format = if all(&|v| {
            (10_000_101..=29_991_231).contains(&v)
                && chrono::NaiveDate::parse_from_str(&v.to_string(), "%Y%m%d").is_ok()
        }) {
            Some("%Y%m%d")
        } else if all(&|v| (100_000_000..10_000_000_000).contains(&v)) {
            Some("epoch_seconds")
        } else if all(&|v| (100_000_000_000..10_000_000_000_000).contains(&v)) {
            Some("epoch_millis")
        } else {
            None
        };
        if let Some(format) = format {
            coded.push((name.clone(), format));
        }
    }
    Ok(coded)
}

/// The data files of `dir`, sorted by name.
fn data_files(dir: &Path, project_dir: &Path) -> Result<Vec<Found>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_str().and_then(SourceFormat::from_path).is_some())
        .collect();
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        let source = match path.strip_prefix(project_dir) {
            Ok(relative) => relative.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        };
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
        let spec = SourceSpec {
            path: path.clone(),
            display: source.clone(),
            format: SourceFormat::from_path(&source).unwrap_or(SourceFormat::Csv),
            overrides: Vec::new(),
            infer_rows: ingest::DEFAULT_INFER_ROWS,
            time_formats: Vec::new(),
        };
        let schema = ingest::read_schema(&spec)?;
        let coded_times = coded_times(&spec, &schema)?;
        found.push(Found { source, stem, schema, coded_times });
    }
    Ok(found)
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes `segmenta.toml` for the data files found and validates it.
pub fn init(options: &InitOptions) -> Result<InitReport> {
    let project_dir = &options.project;
    let file = project_dir.join(PROJECT_FILE);
    if file.exists() && !options.force {
        return Err(Error::Usage {
            message: format!("{} exists", file.display()),
            hint: Some("edit it, or pass --force to replace it with a new starter project".into()),
        });
    }
    let from = options.from.clone().unwrap_or_else(|| project_dir.clone());
    let found = data_files(&from, project_dir)?;
    if found.is_empty() {
        return Err(Error::Usage {
            message: format!("{} holds no data files", from.display()),
            hint: Some(
                "put your .csv, .parquet or .jsonl files there, or name their folder with --from".into(),
            ),
        });
    }
    // Entities: files keyed by their own name.
    let mut entities: Vec<(&Found, String, String)> = Vec::new();
    for f in &found {
        if let Some(key) = f.own_key() {
            let name = identifier(&singular(&f.stem));
            if !entities.iter().any(|(_, n, _)| *n == name) {
                entities.push((f, name, key));
            }
        }
    }
    // The events: a timed file carrying an entity's key that is not an entity itself.
    let is_entity = |f: &Found| entities.iter().any(|(e, _, _)| std::ptr::eq(*e, f));
    fn events_of<'f>(
        f: &'f Found,
        entities: &[(&Found, String, String)],
    ) -> Option<(&'f Found, String, String, String)> {
        let time = f.time_column()?;
        let own = f.own_key();
        let (_, owner, key) = entities.iter().find(|(_, _, key)| f.has(key) && Some(key) != own.as_ref())?;
        Some((f, owner.clone(), key.clone(), time))
    }
    // A file that is no entity first; else a keyed file with times that carries another
    // entity's key (orders.csv: order_id, customer_id, ordered_at) is the events after all.
    let events = found.iter().filter(|f| !is_entity(f)).find_map(|f| events_of(f, &entities)).or_else(|| {
        found
            .iter()
            .filter(|f| f.schema.columns.iter().any(|(_, ty)| *ty == ValueType::Timestamp))
            .find_map(|f| events_of(f, &entities))
    });
    if let Some((f, _, _, _)) = &events {
        entities.retain(|(e, _, _)| !std::ptr::eq(*e, *f));
    }
    // A transaction log alone: an entity of its keys (`customer_id` -> `customer`).
    let log_only = if entities.is_empty() {
        found.iter().find_map(|f| {
            let time = f.time_column()?;
            let key =
                f.schema.columns.iter().map(|(n, _)| n).find(|n| n.ends_with("_id") || *n == "id")?.clone();
            let name = identifier(key.strip_suffix("_id").filter(|n| !n.is_empty()).unwrap_or("customer"));
            Some((f, name, key, time))
        })
    } else {
        None
    };
    let events = events.or_else(|| log_only.clone());
    if entities.is_empty() && log_only.is_none() {
        let files: Vec<&str> = found.iter().map(|f| f.source.as_str()).collect();
        return Err(Error::Usage {
            message: format!("no file of {} has a key column named after it ({})", from.display(), files.join(", ")),
            hint: Some(
                "segmenta init looks for `id` or `<name>_id` (accounts.csv: account_id); rename the column, or write segmenta.toml by hand (docs/project-file.md)"
                    .into(),
            ),
        });
    }
    let project_entity = events
        .as_ref()
        .map(|(_, owner, _, _)| owner.clone())
        .or_else(|| entities.first().map(|(_, name, _)| name.clone()))
        .unwrap_or_else(|| "customer".into());
    let name = project_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());

    let mut toml = String::new();
    let mut listed: Vec<(String, String, String)> =
        entities.iter().map(|(f, n, k)| (n.clone(), f.source.clone(), k.clone())).collect();
    toml.push_str(&format!(
        "# Written by `segmenta init` from the files in {}: a starting point to edit.\n# Check it with `segmenta validate`, run it with `segmenta run`.\n\n",
        from.display()
    ));
    toml.push_str(&format!("[project]\nname = {}\nentity = {}\n", quoted(&name), quoted(&project_entity)));
    for (f, entity, key) in &entities {
        toml.push_str(&format!(
            "\n[entities.{entity}]\nsource = {}\nkey = {}\n",
            quoted(&f.source),
            quoted(key)
        ));
        let parent = entities.iter().find(|(other, other_name, other_key)| {
            !std::ptr::eq(*other, *f) && other_name != entity && other_key != key && f.has(other_key)
        });
        if let Some((_, parent, parent_key)) = parent {
            toml.push_str(&format!(
                "# {} carries `{parent_key}`: each row belongs to a {parent}\nparent = {}\n",
                f.source,
                quoted(parent)
            ));
        }
    }
    if let Some((f, name, key, _)) = &log_only {
        toml.push_str(&format!(
            "\n# No file of {name}s: its rows are the distinct `{key}` of {}\n[entities.{name}]\nfrom_events = true\nkey = {}\n",
            f.source,
            quoted(key)
        ));
        listed.push((name.clone(), format!("{} (distinct {key})", f.source), key.clone()));
    }
    if let Some((f, _, key, time)) = &events {
        toml.push_str(&format!(
            "\n[events]\nsource = {}\nentity_key = {}\ntime = {}\n",
            quoted(&f.source),
            quoted(key),
            quoted(time)
        ));
        if let Some(format) = f.time_format(time) {
            toml.push_str(&format!(
                "# `{time}` holds coded times such as 19970101\ntime_format = {}\n",
                quoted(format)
            ));
        }
        if let Some(kind) = f.column_like(&["event_type", "type", "event", "event_name", "action"], false) {
            toml.push_str(&format!("type = {}\n", quoted(&kind)));
        }
        toml.push_str(
            "\n[traits]\nevents_90d = \"count() within 90d\"\nlast_seen = \"last_seen()\"\ndays_since_last_event = \"days_since_last()\"\n",
        );
        if let Some(amount) = f.column_like(&["amount", "revenue", "price", "value", "total"], true) {
            toml.push_str(&format!(
                "\n# Every event with an amount counts as a purchase; narrow it (e.g. \"event_type = 'purchase'\").\n[rfm]\npurchase = {}\namount = {}\n",
                quoted(&format!("{amount} is not null")),
                quoted(&amount)
            ));
        }
        toml.push_str(
            "\n[segments.active]\nrule = \"events_90d > 0\"\ndescription = \"Behavioral: at least one event in the last 90 days\"\n\n[segments.dormant]\nrule = \"days_since_last_event > 90 or days_since_last_event is null\"\ndescription = \"Lifecycle: no event for 90 days, or never\"\n",
        );
    }
    std::fs::create_dir_all(project_dir).map_err(|source| Error::Io { path: project_dir.clone(), source })?;
    let temp = project_dir.join(format!(".{PROJECT_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&temp, &toml)
        .and_then(|()| std::fs::rename(&temp, &file))
        .map_err(|source| Error::Io { path: file.clone(), source })?;
    let project = Project::load(project_dir)?;
    let plan = crate::validate::validate(&project)?;
    Ok(InitReport { file, entities: listed, events: events.map(|(f, _, _, _)| f.source.clone()), plan })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_names() {
        assert_eq!(singular("accounts"), "account");
        assert_eq!(singular("companies"), "company");
        assert_eq!(singular("address"), "address");
        assert_eq!(singular("data"), "data");
        assert_eq!(identifier("2024 Customers"), "e_2024_customers");
    }
}
