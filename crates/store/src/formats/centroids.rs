//! The kept centroids of discoveries (`centroids/<hash of the key>.json`, format version 1):
//! what the next discovery on the same entity, features, algorithm and scaling matches its
//! clusters against to keep their ids.

use serde::{Deserialize, Serialize};

use super::Document;

/// The version of the centroids file this version of segmenta writes and reads.
pub const CENTROIDS_FORMAT_VERSION: u32 = 1;

/// What kept centroids belong to: a discovery on another entity, feature set, algorithm or
/// scaling clusters a different space and must not reuse them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CentroidsKey {
    /// The project's entity.
    pub entity: String,
    /// The feature names, sorted.
    pub features: Vec<String>,
    /// The algorithm run: `kmeans` or `kprototypes`.
    pub method: String,
    /// The scaling: `standard`, `robust` or `none`.
    pub scaling: String,
}

impl CentroidsKey {
    /// A hash of the key that does not change between builds or platforms (FNV-1a, 64 bits,
    /// over its fields separated by NUL bytes), used as the file name.
    pub fn stable_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for byte in bytes.iter().chain(std::iter::once(&0u8)) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(self.entity.as_bytes());
        feed(self.method.as_bytes());
        feed(self.scaling.as_bytes());
        for feature in &self.features {
            feed(feature.as_bytes());
        }
        hash
    }
}

/// The centroids of the last discovery on a key (format version 1).
///
/// Unlike the other documents its `format_version` is a plain number, set by the caller to
/// [`CENTROIDS_FORMAT_VERSION`], because the engine builds it that way; reading checks it all
/// the same (see [`super::from_json`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCentroids {
    /// [`CENTROIDS_FORMAT_VERSION`].
    pub format_version: u32,
    /// What they belong to.
    pub key: CentroidsKey,
    /// The discovery's output folder.
    pub discovery: String,
    /// The as-of instant of the discovery (RFC 3339).
    pub as_of: String,
    /// One per cluster, by id.
    pub centroids: Vec<StoredCentroid>,
}

impl Document for StoredCentroids {
    /// The file name depends on the key (see [`crate::Store::centroids_path`]); this one names
    /// the format in messages.
    const FILE: &'static str = "centroids.json";
    const VERSION: u32 = CENTROIDS_FORMAT_VERSION;
}

/// One cluster's centroid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCentroid {
    /// The cluster id.
    pub id: u32,
    /// Per feature.
    pub features: Vec<StoredCenter>,
}

/// The centre of one feature in one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredCenter {
    /// A numeric feature: the centre in original units and in the space clustered.
    Numeric {
        /// The feature.
        name: String,
        /// In original units.
        original: f64,
        /// In the scaled space.
        scaled: f64,
    },
    /// A categorical feature: the mode and the share of every value (`None`: missing).
    Categorical {
        /// The feature.
        name: String,
        /// The most frequent value.
        mode: Option<String>,
        /// `(value, share)` pairs.
        shares: Vec<(Option<String>, f64)>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categorical_shares_are_pairs() {
        let center = StoredCenter::Categorical {
            name: "plan".into(),
            mode: None,
            shares: vec![(None, 0.5), (Some("pro".into()), 0.5)],
        };
        let text = serde_json::to_string(&center).expect("serializes");
        assert_eq!(
            text,
            r#"{"kind":"categorical","name":"plan","mode":null,"shares":[[null,0.5],["pro",0.5]]}"#
        );
        assert_eq!(serde_json::from_str::<StoredCenter>(&text).expect("reads"), center);
    }
}
