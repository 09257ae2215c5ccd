//! The run store: each run is a folder of Parquet and JSON files inside the project's store
//! folder (`.segmenta/runs/<run id>/`), written atomically, with a `latest` pointer. Segment
//! discoveries are folders too (`.segmenta/discoveries/<time>/`), and the centroids of the last
//! discovery on each set of features are kept (`.segmenta/centroids/`) so that the next one keeps
//! its cluster ids.
//!
//! Atomicity: a run's files are written into a hidden staging folder next to the destination
//! and the folder is renamed into place, so readers see either the previous output or the whole
//! new one. The `latest` pointer is replaced by writing a temporary file and renaming it.
//!
//! The JSON files are typed, versioned documents defined in [`formats`].
#![warn(missing_docs)]

pub mod catalog;
pub mod event_log;
pub mod formats;
pub mod run_log;
pub mod tokens;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

pub use formats::{
    CENTROIDS_FORMAT_VERSION, CentroidsKey, ChurnModel, ClvHoldout, ClvParams, DiscoveryReport, Document,
    FormatVersion, RunSummary, StoredCenter, StoredCentroid, StoredCentroids, from_json, read_churn_model,
    read_clv_holdout, read_clv_params, read_discovery, read_document, read_run_summary,
};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file could not be written or read.
    #[error("parquet file {path}: {source}")]
    Parquet {
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow data did not have the expected shape.
    #[error("arrow data in {path}: {source}")]
    Arrow {
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// There is no run yet.
    #[error(
        "no run yet in {0}\n  hint: `segmenta run` computes the traits and segments and makes the latest run"
    )]
    NoRun(PathBuf),
    /// A stored file does not have the layout this version writes.
    #[error("unexpected layout in {path}: {message}")]
    Layout {
        /// Where.
        path: PathBuf,
        /// What.
        message: String,
    },
    /// A stored JSON document has a `format_version` this version of segmenta does not read.
    #[error(
        "{path}: format_version {} is not supported (this version of segmenta reads {supported})",
        .found.map_or_else(|| "missing".to_string(), |v| v.to_string())
    )]
    FormatVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file (`None`: no `format_version` key).
        found: Option<u64>,
        /// The version read.
        supported: u32,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_path_buf(), source }
}

/// File names inside a run folder.
pub mod files {
    /// Traits per entity.
    pub const TRAITS: &str = "traits.parquet";
    /// One row per (entity, segment) membership.
    pub const MEMBERSHIPS: &str = "memberships.parquet";
    /// Counts and segment sizes.
    pub const SUMMARY: &str = "summary.json";
    /// Rejected input rows, when `--on-bad-rows reject` set some aside.
    pub const REJECTS: &str = "rejects.csv";
    /// The evaluation table (attributes, traits, segment flags) that previews read.
    pub const TABLE: &str = "table.parquet";
    /// A discovery's cluster per entity.
    pub const CLUSTERS: &str = "clusters.parquet";
    /// A discovery's report: k selection, preprocessing, clusters with personas and rules.
    pub const DISCOVERY: &str = "discovery.json";
    /// The fitted CLV models of a run with `[clv]` or of `segmenta clv`.
    pub const CLV_PARAMS: &str = "clv_params.json";
    /// The holdout check of `segmenta clv --holdout`.
    pub const CLV_HOLDOUT: &str = "holdout.json";
    /// The churn model of a run with `[churn]` or of `segmenta predict churn`.
    pub const CHURN_MODEL: &str = "churn_model.json";
}

/// One file of a run's output.
pub enum OutputFile {
    /// A table written as Parquet.
    Parquet(RecordBatch),
    /// A JSON document, pretty-printed.
    Json(serde_json::Value),
    /// Raw bytes (CSV rejects).
    Bytes(Vec<u8>),
}

/// The store folder of a project.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new, unused run folder path: `runs/<UTC time>-<n>`.
    pub fn new_run_dir(&self) -> PathBuf {
        new_dir_in(&self.root.join("runs"))
    }

    /// A new, unused folder path `KIND/<UTC time>-<n>` (`clv`, `predictions`).
    pub fn new_dir(&self, kind: &str) -> PathBuf {
        new_dir_in(&self.root.join(kind))
    }

    /// A new, unused discovery folder path: `discoveries/<UTC time>-<n>`.
    pub fn new_discovery_dir(&self) -> PathBuf {
        new_dir_in(&self.root.join("discoveries"))
    }

    /// The file holding the centroids kept for `key`: `centroids/<hash of the key>.json`.
    pub fn centroids_path(&self, key: &CentroidsKey) -> PathBuf {
        self.root.join("centroids").join(format!("{:016x}.json", key.stable_hash()))
    }

    /// The centroids kept for `key`, if a discovery on it has stored some.
    pub fn read_centroids(&self, key: &CentroidsKey) -> Result<Option<StoredCentroids>> {
        let path = self.centroids_path(key);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let stored: StoredCentroids = from_json(&path, &text)?;
        // Another key with the same hash: nothing is kept for this one.
        Ok((stored.key == *key).then_some(stored))
    }

    /// Keeps `centroids` for their key (atomically), replacing what was kept before.
    pub fn write_centroids(&self, centroids: &StoredCentroids) -> Result<PathBuf> {
        let path = self.centroids_path(&centroids.key);
        let dir = self.root.join("centroids");
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let text = serde_json::to_vec_pretty(centroids)
            .map_err(|e| Error::Layout { path: path.clone(), message: e.to_string() })?;
        write_atomically(&path, &text)?;
        Ok(path)
    }

    /// Records `run_dir` as the latest run (atomically).
    pub fn set_latest(&self, run_dir: &Path) -> Result<()> {
        fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        let target = run_dir.canonicalize().map_err(io("resolve", run_dir))?;
        let pointer = self.root.join("latest");
        write_atomically(&pointer, target.to_string_lossy().as_bytes())
    }

    /// The latest run's folder.
    pub fn latest(&self) -> Result<PathBuf> {
        let pointer = self.root.join("latest");
        let text = match fs::read_to_string(&pointer) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoRun(self.root.clone()));
            }
            Err(e) => return Err(io("read", &pointer)(e)),
        };
        let dir = PathBuf::from(text.trim());
        if !dir.is_dir() {
            return Err(Error::Layout {
                path: pointer,
                message: format!("the latest run {} is gone", dir.display()),
            });
        }
        Ok(dir)
    }
}

/// A new, unused folder path in `parent`: `<UTC time>`, or `<UTC time>-<n>` if that exists.
fn new_dir_in(parent: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let mut n = 0u32;
    loop {
        let candidate = if n == 0 { parent.join(&stamp) } else { parent.join(format!("{stamp}-{n}")) };
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("create a temporary file in", dir))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io("write", path))?;
    tmp.as_file().sync_all().map_err(io("sync", path))?;
    tmp.persist(path).map_err(|e| Error::Io {
        action: "replace",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// How segmenta writes Parquet: Snappy, dictionaries except for `entity_id`. The id is unique
/// per row in traits and tables and repeats only per segment in memberships: its dictionary
/// outgrew the page limit and fell back to plain encoding anyway, after hashing every id. Without
/// it the three files of a run encode 4-18% faster and come out 2-4% smaller (100,000 accounts,
/// docs/benchmarks.md).
fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_column_dictionary_enabled(ColumnPath::from("entity_id"), false)
        .build()
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let file = fs::File::create(path).map_err(io("create", path))?;
    let props = writer_properties();
    let parquet = |source| Error::Parquet { path: path.to_path_buf(), source };
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet)?;
    writer.write(batch).map_err(parquet)?;
    let file = writer.into_inner().map_err(parquet)?;
    file.sync_all().map_err(io("sync", path))
}

/// Writes a run's files into `dest` atomically: into a staging folder beside it, then renamed
/// into place. An existing `dest` is replaced only once the new output is complete.
pub fn write_run(dest: &Path, outputs: &[(&str, OutputFile)]) -> Result<()> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io("create", parent))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(parent)
        .map_err(io("create a staging folder in", parent))?;
    let write_one = |file_name: &str, output: &OutputFile| -> Result<()> {
        let path = staging.path().join(file_name);
        match output {
            OutputFile::Parquet(batch) => write_parquet(&path, batch)?,
            OutputFile::Json(value) => {
                let text = serde_json::to_vec_pretty(value)
                    .map_err(|e| Error::Layout { path: path.clone(), message: e.to_string() })?;
                fs::write(&path, text).map_err(io("write", &path))?;
            }
            OutputFile::Bytes(bytes) => fs::write(&path, bytes).map_err(io("write", &path))?,
        }
        Ok(())
    };
    // The Parquet files are encoded (and synced) each on a thread of its own: a run's traits,
    // memberships and table take about equally long, and nothing else runs meanwhile.
    std::thread::scope(|scope| {
        let parquet: Vec<_> = outputs
            .iter()
            .filter(|(_, output)| matches!(output, OutputFile::Parquet(_)))
            .map(|(file_name, output)| scope.spawn(move || write_one(file_name, output)))
            .collect();
        for (file_name, output) in outputs.iter().filter(|(_, o)| !matches!(o, OutputFile::Parquet(_))) {
            write_one(file_name, output)?;
        }
        parquet.into_iter().try_for_each(|handle| {
            handle.join().unwrap_or_else(|_| {
                Err(Error::Layout {
                    path: staging.path().to_path_buf(),
                    message: "a writer thread panicked".into(),
                })
            })
        })
    })?;
    let staged = staging.keep();
    if dest.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        fs::rename(dest, &old).map_err(io("move aside", dest))?;
        fs::rename(&staged, dest).map_err(io("rename into", dest))?;
        fs::remove_dir_all(&old).map_err(io("remove", &old))?;
    } else {
        fs::rename(&staged, dest).map_err(io("rename into", dest))?;
    }
    Ok(())
}

/// A batch as the bytes of a Parquet file (Snappy, as the run's own files), for exports.
pub fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let props = writer_properties();
    let path = PathBuf::from("(export)");
    let parquet = |source| Error::Parquet { path: path.clone(), source };
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(parquet)?;
    writer.write(batch).map_err(parquet)?;
    writer.into_inner().map_err(parquet)
}

/// Reads a whole Parquet file as one batch.
pub fn read_parquet(path: &Path) -> Result<RecordBatch> {
    let file = fs::File::open(path).map_err(io("open", path))?;
    let parquet = |source| Error::Parquet { path: path.to_path_buf(), source };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet)?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(parquet)?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| Error::Arrow { path: path.to_path_buf(), source })?;
    arrow::compute::concat_batches(&schema, &batches)
        .map_err(|source| Error::Arrow { path: path.to_path_buf(), source })
}

/// The column names of a Parquet file, in order.
pub fn read_parquet_schema(path: &Path) -> Result<Vec<String>> {
    let file = fs::File::open(path).map_err(io("open", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|source| Error::Parquet { path: path.to_path_buf(), source })?;
    Ok(builder.schema().fields().iter().map(|f| f.name().clone()).collect())
}

/// Reads the named columns of a Parquet file (those it has), as one batch.
pub fn read_parquet_columns(path: &Path, columns: &[String]) -> Result<RecordBatch> {
    let file = fs::File::open(path).map_err(io("open", path))?;
    let parquet = |source| Error::Parquet { path: path.to_path_buf(), source };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet)?;
    let indices: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.iter().any(|c| c == f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder.with_projection(mask).with_batch_size(64 * 1024).build().map_err(parquet)?;
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| Error::Arrow { path: path.to_path_buf(), source })?;
    arrow::compute::concat_batches(&schema, &batches)
        .map_err(|source| Error::Arrow { path: path.to_path_buf(), source })
}

/// The columns `names` of a Parquet file, each read as text (cast to Utf8), in the order asked;
/// `None` for a column the file does not have.
pub fn read_text_columns(path: &Path, names: &[&str]) -> Result<Vec<Option<StringArray>>> {
    let wanted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let batch = read_parquet_columns(path, &wanted)?;
    names
        .iter()
        .map(|name| {
            let Some(column) = batch.column_by_name(name) else { return Ok(None) };
            let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
                .map_err(|source| Error::Arrow { path: path.to_path_buf(), source })?;
            Ok(Some(text.as_string::<i32>().clone()))
        })
        .collect()
}

/// The members of `segment` in a run folder, in stored order.
pub fn read_members(run_dir: &Path, segment: &str) -> Result<Vec<String>> {
    let (ids, segments) = read_memberships(run_dir)?;
    Ok((0..ids.len())
        .filter(|&i| segments.is_valid(i) && segments.value(i) == segment && ids.is_valid(i))
        .map(|i| ids.value(i).to_string())
        .collect())
}

/// A run folder's memberships: the `entity_id` and `segment` columns, as text.
pub fn read_memberships(run_dir: &Path) -> Result<(StringArray, StringArray)> {
    let path = run_dir.join(files::MEMBERSHIPS);
    let mut columns = read_text_columns(&path, &["entity_id", "segment"])?.into_iter();
    let mut next = |name: &str| {
        columns
            .next()
            .flatten()
            .ok_or_else(|| Error::Layout { path: path.clone(), message: format!("no column `{name}`") })
    };
    Ok((next("entity_id")?, next("segment")?))
}

/// Reads a run's summary, untyped (see [`read_run_summary`] for the typed one).
pub fn read_summary(run_dir: &Path) -> Result<serde_json::Value> {
    let path = run_dir.join(files::SUMMARY);
    let text = fs::read(&path).map_err(io("read", &path))?;
    serde_json::from_slice(&text).map_err(|e| Error::Layout { path, message: e.to_string() })
}

/// Keeps `Arc` in the public API stable for callers building batches.
pub type SchemaRef = Arc<arrow::datatypes::Schema>;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};

    fn memberships(pairs: &[(&str, &str)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("entity_id", DataType::Utf8, false),
            Field::new("segment", DataType::Utf8, false),
        ]);
        let ids: StringArray = pairs.iter().map(|p| Some(p.0)).collect();
        let segs: StringArray = pairs.iter().map(|p| Some(p.1)).collect();
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ids), Arc::new(segs)]).expect("valid batch")
    }

    #[test]
    fn run_round_trip_and_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join(".segmenta"));
        assert!(matches!(store.latest(), Err(Error::NoRun(_))));
        let run = store.new_run_dir();
        let batch = memberships(&[("a", "big"), ("b", "small"), ("c", "big")]);
        write_run(
            &run,
            &[
                (files::MEMBERSHIPS, OutputFile::Parquet(batch)),
                (files::SUMMARY, OutputFile::Json(serde_json::json!({"entities": 3}))),
            ],
        )
        .expect("write");
        store.set_latest(&run).expect("latest");
        let latest = store.latest().expect("latest run");
        assert_eq!(read_members(&latest, "big").expect("members"), ["a", "c"]);
        assert_eq!(read_summary(&latest).expect("summary")["entities"], 3);

        // Replacing an existing output leaves exactly the new files and no staging folders.
        write_run(&run, &[(files::MEMBERSHIPS, OutputFile::Parquet(memberships(&[("z", "big")])))])
            .expect("rewrite");
        assert_eq!(read_members(&run, "big").expect("members"), ["z"]);
        assert!(!run.join(files::SUMMARY).exists());
        let leftovers: Vec<_> = fs::read_dir(run.parent().expect("parent"))
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn centroids_round_trip_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join(".segmenta"));
        let key = CentroidsKey {
            entity: "account".into(),
            features: vec!["arr".into(), "industry".into()],
            method: "kprototypes".into(),
            scaling: "standard".into(),
        };
        assert_eq!(store.read_centroids(&key).expect("nothing kept yet"), None);
        let stored = StoredCentroids {
            format_version: CENTROIDS_FORMAT_VERSION,
            key: key.clone(),
            discovery: "d".into(),
            as_of: "2025-01-01T00:00:00Z".into(),
            centroids: vec![StoredCentroid {
                id: 3,
                features: vec![
                    StoredCenter::Numeric { name: "arr".into(), original: 1234.5, scaled: -0.25 },
                    StoredCenter::Categorical {
                        name: "industry".into(),
                        mode: Some("retail".into()),
                        shares: vec![(None, 0.25), (Some("retail".into()), 0.75)],
                    },
                ],
            }],
        };
        store.write_centroids(&stored).expect("written");
        assert_eq!(store.read_centroids(&key).expect("read"), Some(stored.clone()));

        // Another scaling is another key; the hash does not depend on the build.
        let robust = CentroidsKey { scaling: "robust".into(), ..key.clone() };
        assert_eq!(store.read_centroids(&robust).expect("read"), None);
        assert_ne!(key.stable_hash(), robust.stable_hash());
        let renamed = CentroidsKey { features: vec!["arrindustry".into()], ..key.clone() };
        assert_ne!(key.stable_hash(), renamed.stable_hash(), "fields are separated");

        // A file of an unknown format version is an error, not silently ignored.
        let path = store.centroids_path(&key);
        let text = fs::read_to_string(&path)
            .expect("read")
            .replace("\"format_version\": 1", "\"format_version\": 9");
        fs::write(&path, text).expect("write");
        let error = store.read_centroids(&key).expect_err("version 9 is unknown");
        assert!(error.to_string().contains("format_version 9"), "{error}");
        assert!(store.new_discovery_dir().starts_with(dir.path().join(".segmenta/discoveries")));
    }
}
