//! Static lists: importing a CSV of ids as a static segment, freezing a dynamic segment's
//! current members into one, and adding segments to `segmenta.toml` without disturbing the
//! rest of the file.
//!
//! A static list lives in the project as `lists/NAME.csv` (one `entity_id` column, sorted,
//! without duplicates), so it is diffable in git like the rules.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::DataType;
use segmenta_core::config::SourceFormat;
use segmenta_query::ingest::{self, BadRows, SourceSpec};

use crate::error::{Error, Result};
use crate::project::{Project, STATIC_LIST_COLUMN};

/// What to do with imported ids that are not entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownIds {
    /// Stop with an error that lists them (the default: nothing is dropped silently).
    #[default]
    Error,
    /// Leave them out of the list, and report how many.
    Drop,
    /// Keep them in the list; every run reports them.
    Keep,
}

/// What an import or a freeze did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListReport {
    /// The static segment.
    pub name: String,
    /// The list file, relative to the project folder.
    pub file: String,
    /// Ids read (rows with an id).
    pub read: u64,
    /// Repeated ids, counted once.
    pub duplicates: u64,
    /// Ids that are not entities.
    pub unknown: u64,
    /// Up to ten of them, sorted.
    pub unknown_sample: Vec<String>,
    /// Ids written to the list.
    pub written: u64,
}

fn list_path(name: &str) -> String {
    format!("lists/{name}.csv")
}

fn check_list_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage {
            message: format!("invalid list name `{name}`"),
            hint: Some("use letters, digits, `_` and `-` (the name is also the file name)".into()),
        })
    }
}

/// The ids of the project's entity, as text.
fn entity_ids(project: &Project) -> Result<HashSet<String>> {
    let validated = crate::validate::validate(project)?;
    let entity = validated.entity();
    let loaded = ingest::load_table(&entity.spec, BadRows::Reject)?;
    let mut ids = HashSet::with_capacity(loaded.num_rows());
    for batch in &loaded.batches {
        let column = batch
            .column_by_name(&entity.key)
            .ok_or_else(|| Error::Internal(format!("key column `{}` missing", entity.key)))?;
        let column = arrow::compute::cast(column, &DataType::Utf8).map_err(segmenta_query::Error::from)?;
        ids.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(ids)
}

/// Reads the ids of `file` (CSV): the column `column`, else `entity_id`, else the entity's key
/// column, else the only column.
fn read_ids(file: &Path, column: Option<&str>, key: &str) -> Result<Vec<String>> {
    let display = file.display().to_string();
    if SourceFormat::from_path(&display) != Some(SourceFormat::Csv) {
        return Err(Error::Usage {
            message: format!("{display} is not a .csv file"),
            hint: Some("export the ids as CSV with a header row".into()),
        });
    }
    let mut spec = SourceSpec {
        path: file.to_path_buf(),
        display: display.clone(),
        format: SourceFormat::Csv,
        overrides: Vec::new(),
        infer_rows: ingest::DEFAULT_INFER_ROWS,
        time_formats: Vec::new(),
    };
    let schema = ingest::read_schema(&spec)?;
    let names: Vec<&str> = schema.names().collect();
    let chosen = match column {
        Some(c) if names.contains(&c) => c.to_string(),
        Some(c) => {
            return Err(Error::Schema {
                message: format!("{display}: there is no column `{c}`"),
                hint: Some(format!("the file's columns are: {}", names.join(", "))),
            });
        }
        None if names.contains(&STATIC_LIST_COLUMN) => STATIC_LIST_COLUMN.to_string(),
        None if names.contains(&key) => key.to_string(),
        None if names.len() == 1 => names[0].to_string(),
        None => {
            return Err(Error::Schema {
                message: format!("{display}: which column holds the ids?"),
                hint: Some(format!("pass --column, one of: {}", names.join(", "))),
            });
        }
    };
    // Ids are text, whatever they look like.
    spec.overrides = vec![(chosen.clone(), segmenta_core::ValueType::String)];
    let loaded = ingest::load_table(&spec, BadRows::Strict)?;
    let mut ids = Vec::with_capacity(loaded.num_rows());
    for batch in &loaded.batches {
        let column = batch
            .column_by_name(&chosen)
            .ok_or_else(|| Error::Internal(format!("column `{chosen}` vanished from {display}")))?;
        ids.extend(
            column
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
    Ok(ids)
}

/// Writes the list file and adds (or keeps) the static segment in `segmenta.toml`.
fn write_list(
    project: &Project,
    name: &str,
    ids: &BTreeSet<String>,
    description: &str,
    replace: bool,
) -> Result<String> {
    let file = list_path(name);
    let is_this_list = |segment: &segmenta_core::config::SegmentConfig| {
        segment.static_list.as_ref().map(|s| s.get_ref().as_str()) == Some(file.as_str())
    };
    match project.config.segments.get(name) {
        Some(existing) if is_this_list(existing) && !replace => {
            return Err(Error::Usage {
                message: format!("the static list `{name}` exists"),
                hint: Some("pass --replace to overwrite its ids".into()),
            });
        }
        Some(existing) if is_this_list(existing) => {}
        Some(_) => {
            return Err(Error::Usage {
                message: format!("segment `{name}` exists and is not the static list {file}"),
                hint: Some("choose another name".into()),
            });
        }
        None if project.config.segment_names().iter().any(|n| n == name) => {
            return Err(Error::Usage {
                message: format!("`{name}` is already a segment name"),
                hint: Some("choose another name".into()),
            });
        }
        None => {}
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| Error::Internal(format!("writing a list: {e}"));
    writer.write_record([STATIC_LIST_COLUMN]).map_err(internal)?;
    for id in ids {
        writer.write_record([id]).map_err(internal)?;
    }
    let bytes = writer.into_inner().map_err(|e| Error::Internal(format!("writing a list: {e}")))?;
    let path = project.dir.join(&file);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    }
    segmenta_store::write_atomically(&path, &bytes)?;
    if !project.config.segments.contains_key(name) {
        let mut table = toml_edit::Table::new();
        table.insert("static", toml_edit::value(file.clone()));
        table.insert("description", toml_edit::value(description));
        add_segment(project, name, table)?;
    }
    Ok(file)
}

/// Adds `[segments.NAME]` to the project file, keeping everything else as written; the file is
/// replaced atomically, and the result must still parse.
pub(crate) fn add_segment(project: &Project, name: &str, table: toml_edit::Table) -> Result<()> {
    let edited = with_segments(project, vec![(name.to_string(), table)])?;
    write_project_file(&edited)
}

/// The project with `[segments.NAME]` tables added to its file (in memory; nothing is written),
/// keeping the file's comments and layout. Existing segment names are refused. The new text must
/// parse; its rules are checked by the caller (`validate` on the result), before
/// [`write_project_file`].
pub(crate) fn with_segments(project: &Project, added: Vec<(String, toml_edit::Table)>) -> Result<Project> {
    let mut document: toml_edit::DocumentMut = project.text.parse().map_err(|e: toml_edit::TomlError| {
        Error::Internal(format!("{} parsed before but not now: {e}", project.file.display()))
    })?;
    let segments = segments_table(&mut document, project)?;
    let existing = project.config.segment_names();
    for (name, table) in added {
        if segments.contains_key(&name) || existing.contains(&name) {
            return Err(Error::Usage {
                message: format!("{}: segment `{name}` exists", project.file.display()),
                hint: Some("choose other names, or remove the segment from the project file".into()),
            });
        }
        segments.insert(&name, toml_edit::Item::Table(table));
    }
    let text = document.to_string();
    let config = segmenta_core::config::parse_project(&text)
        .map_err(|errors| Error::Config { path: project.file.clone(), errors })?;
    Ok(Project { dir: project.dir.clone(), file: project.file.clone(), text, config })
}

/// The `[segments]` table of a project file's document, created (implicit) when missing.
pub(crate) fn segments_table<'d>(
    document: &'d mut toml_edit::DocumentMut,
    project: &Project,
) -> Result<&'d mut dyn toml_edit::TableLike> {
    document
        .entry("segments")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_like_mut()
        .ok_or_else(|| Error::Usage {
            message: format!("{}: `segments` is not a table", project.file.display()),
            hint: None,
        })
}

/// Replaces the project file with `project.text`, atomically.
pub(crate) fn write_project_file(project: &Project) -> Result<()> {
    // `project.file`, not `DIR/segmenta.toml`: a project may be loaded from a file of another name.
    segmenta_store::write_atomically(&project.file, project.text.as_bytes())?;
    Ok(())
}

/// Imports the ids of a CSV file as the static segment `name`.
pub fn import_list(
    project: &Project,
    name: &str,
    file: &Path,
    column: Option<&str>,
    unknown: UnknownIds,
    replace: bool,
) -> Result<ListReport> {
    check_list_name(name)?;
    let key = &project
        .config
        .entities
        .get(project.config.project.entity.get_ref())
        .ok_or_else(|| Error::Internal("the project entity vanished".into()))?
        .key;
    let ids = read_ids(file, column, key)?;
    let known = entity_ids(project)?;
    let read = ids.len() as u64;
    let distinct: BTreeSet<String> = ids.into_iter().collect();
    let duplicates = read - distinct.len() as u64;
    let unknown_ids: Vec<&String> = distinct.iter().filter(|id| !known.contains(*id)).collect();
    let unknown_sample: Vec<String> = unknown_ids.iter().take(10).map(|s| s.to_string()).collect();
    let unknown_count = unknown_ids.len() as u64;
    if unknown_count > 0 && unknown == UnknownIds::Error {
        return Err(Error::UnknownIds {
            file: file.to_path_buf(),
            count: unknown_count,
            sample: unknown_sample,
        });
    }
    let kept: BTreeSet<String> = match unknown {
        UnknownIds::Drop => distinct.iter().filter(|id| known.contains(*id)).cloned().collect(),
        _ => distinct,
    };
    let description = format!("static list imported from {}", file.display());
    let list_file = write_list(project, name, &kept, &description, replace)?;
    Ok(ListReport {
        name: name.to_string(),
        file: list_file,
        read,
        duplicates,
        unknown: unknown_count,
        unknown_sample,
        written: kept.len() as u64,
    })
}

/// Freezes the members of `segment` in the latest run into the static segment `name`.
pub fn freeze_segment(project: &Project, segment: &str, name: &str, replace: bool) -> Result<ListReport> {
    check_list_name(name)?;
    let members = crate::latest::members(project, segment)?;
    let store = segmenta_store::Store::new(project.store_dir());
    let latest: PathBuf = store.latest()?;
    let as_of = segmenta_store::read_summary(&latest)?["as_of"].as_str().unwrap_or("?").to_string();
    let read = members.len() as u64;
    let ids: BTreeSet<String> = members.into_iter().collect();
    let description = format!("members of `{segment}` frozen from the run as of {as_of}");
    let file = write_list(project, name, &ids, &description, replace)?;
    Ok(ListReport {
        name: name.to_string(),
        file,
        read,
        duplicates: 0,
        unknown: 0,
        unknown_sample: Vec::new(),
        written: ids.len() as u64,
    })
}
