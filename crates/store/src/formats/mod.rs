//! The persisted JSON formats of the store: one typed, versioned document per file
//! (`summary.json`, `clv_params.json`, `holdout.json`, `churn_model.json`, `discovery.json` and
//! the kept centroids), with the version check every reader goes through.
//!
//! Each document carries a top-level `format_version`. Reading first looks at that key alone, so
//! a file written by another version of segmenta is refused with [`Error::FormatVersion`]
//! (naming the file, the version found and the version read) instead of a confusing message about
//! some other key. Writing goes through [`OutputFile::document`], which serializes the typed
//! value to a `serde_json::Value` first: the file's key order (sorted) and number formatting are
//! then byte for byte those of the `json!` documents written before these types existed.

pub mod centroids;
pub mod churn_model;
pub mod clv_holdout;
pub mod clv_params;
pub mod discovery;
pub mod summary;

use std::fs;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, OutputFile, Result, io};

pub use centroids::{CENTROIDS_FORMAT_VERSION, CentroidsKey, StoredCenter, StoredCentroid, StoredCentroids};
pub use churn_model::{
    CalibrationBin, ChurnHoldout, ChurnModel, ChurnModelFeature, ChurnModelKind, ChurnTraining, FeatureStatus,
};
pub use clv_holdout::{ClvHoldout, HoldoutGroup};
pub use clv_params::{BgNbdParams, ClvEntities, ClvParams, DiamondsParams, GammaGammaParams, TimeUnit};
pub use discovery::{
    Algorithm, CategoryContrast, CategoryShare, ClusterIdAssignment, ClusterIds, ClusterSummary,
    DiscoveryCenter, DiscoveryFeature, DiscoveryOptions, DiscoveryReport, FeatureKind, FeaturePreprocessing,
    FeatureSource, FeatureType, KRange, KScore, KSelection, KSetting, LogTransform, Method, NumericContrast,
    Persona, Scaling, Stability,
};
pub use summary::{
    ChurnSummary, EntityRows, EventsSummary, RunSummary, SegmentKind, SegmentSummary, StaticListSummary,
    Warning,
};

/// The `format_version` of a document whose current version is `V`: it always serializes as
/// `V`, and deserializing any other number fails, so a typed document cannot be written with a
/// stale version nor read from a file of another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FormatVersion<const V: u32>;

impl<const V: u32> FormatVersion<V> {
    /// The version number.
    pub const NUMBER: u32 = V;
}

impl<const V: u32> Serialize for FormatVersion<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(V)
    }
}

impl<'de, const V: u32> Deserialize<'de> for FormatVersion<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = u64::deserialize(deserializer)?;
        if found == u64::from(V) {
            Ok(FormatVersion)
        } else {
            Err(serde::de::Error::custom(format_args!(
                "format_version {found} is not supported (this version of segmenta reads {V})"
            )))
        }
    }
}

/// A persisted JSON document: its file name and the version this build writes and reads.
pub trait Document: Serialize + DeserializeOwned {
    /// The file name inside its folder (`summary.json`).
    const FILE: &'static str;
    /// The `format_version` written, and the only one read.
    const VERSION: u32;

    /// The document as a file of a run's output: `(file name, JSON)`, for [`crate::write_run`].
    fn output(&self) -> Result<(&'static str, OutputFile)> {
        Ok((Self::FILE, OutputFile::document(self)?))
    }
}

impl OutputFile {
    /// A typed document as a JSON output file (pretty-printed, keys sorted as they always were).
    pub fn document<T: Document>(document: &T) -> Result<OutputFile> {
        serde_json::to_value(document)
            .map(OutputFile::Json)
            .map_err(|e| Error::Layout { path: T::FILE.into(), message: e.to_string() })
    }
}

/// Only the version of a document, read before the rest so that a file of another version is
/// reported as such.
#[derive(Deserialize)]
struct VersionProbe {
    format_version: Option<u64>,
}

/// Parses `bytes`, the content of the file at `path`, as a `T`: first its `format_version`
/// (another version, or none, is [`Error::FormatVersion`]), then the whole document.
pub fn from_json<T: Document>(path: &Path, bytes: &[u8]) -> Result<T> {
    let layout = |e: serde_json::Error| Error::Layout { path: path.to_path_buf(), message: e.to_string() };
    let probe: VersionProbe = serde_json::from_slice(bytes).map_err(layout)?;
    if probe.format_version != Some(u64::from(T::VERSION)) {
        return Err(Error::FormatVersion {
            path: path.to_path_buf(),
            found: probe.format_version,
            supported: T::VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(layout)
}

/// Reads the document `T` from its file in `dir`.
pub fn read_document<T: Document>(dir: &Path) -> Result<T> {
    let path = dir.join(T::FILE);
    let bytes = fs::read(&path).map_err(io("read", &path))?;
    from_json(&path, &bytes)
}

/// Reads a run folder's `summary.json`.
pub fn read_run_summary(run_dir: &Path) -> Result<RunSummary> {
    read_document(run_dir)
}

/// Reads the `clv_params.json` of a run folder or of a `segmenta clv` folder.
pub fn read_clv_params(dir: &Path) -> Result<ClvParams> {
    read_document(dir)
}

/// Reads the `holdout.json` of a `segmenta clv --holdout` folder.
pub fn read_clv_holdout(dir: &Path) -> Result<ClvHoldout> {
    read_document(dir)
}

/// Reads the `churn_model.json` of a run folder or of a `segmenta predict churn` folder.
pub fn read_churn_model(dir: &Path) -> Result<ChurnModel> {
    read_document(dir)
}

/// Reads a discovery folder's `discovery.json`.
pub fn read_discovery(discovery_dir: &Path) -> Result<DiscoveryReport> {
    read_document(discovery_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        format_version: FormatVersion<3>,
        name: String,
    }

    impl Document for Doc {
        const FILE: &'static str = "doc.json";
        const VERSION: u32 = 3;
    }

    fn check(text: &str, expected: std::result::Result<&str, &str>) {
        let got = from_json::<Doc>(Path::new("dir/doc.json"), text.as_bytes());
        match (got, expected) {
            (Ok(doc), Ok(name)) => assert_eq!(doc, Doc { format_version: FormatVersion, name: name.into() }),
            (Err(error), Err(message)) => assert_eq!(error.to_string(), message),
            (got, expected) => panic!("{text}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn the_version_is_checked_before_the_rest() {
        check(r#"{"format_version": 3, "name": "a"}"#, Ok("a"));
        check(
            r#"{"format_version": 4}"#,
            Err("dir/doc.json: format_version 4 is not supported (this version of segmenta reads 3)"),
        );
        check(
            r#"{"name": "a"}"#,
            Err("dir/doc.json: format_version missing is not supported (this version of segmenta reads 3)"),
        );
        check(
            r#"{"format_version": 3}"#,
            Err("unexpected layout in dir/doc.json: missing field `name` at line 1 column 21"),
        );
    }

    #[test]
    fn the_version_always_serializes_as_the_current_one() {
        let doc = Doc { format_version: FormatVersion, name: "a".into() };
        assert_eq!(serde_json::to_string(&doc).expect("serializes"), r#"{"format_version":3,"name":"a"}"#);
        assert_eq!(FormatVersion::<3>::NUMBER, 3);
        let nested: std::result::Result<FormatVersion<1>, _> = serde_json::from_str("2");
        let error = nested.expect_err("2 is not 1").to_string();
        assert!(error.contains("format_version 2 is not supported"), "{error}");
    }
}
