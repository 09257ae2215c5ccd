//! The catalog of snapshots: every run recorded under its as-of instant, in `catalog.sqlite`
//! in the store folder (SQLite in WAL mode, so that a reader, such as a server, sees the last
//! committed state while a run writes). The run folders stay as they are; the catalog points at
//! them. A run with the as-of of an existing snapshot replaces it in one transaction: readers
//! see the old snapshot or the new one, never neither.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use crate::{Error, Result};

/// The catalog's file name in the store folder.
pub const CATALOG: &str = "catalog.sqlite";

/// The schema version (SQLite's `user_version`); a newer one is refused.
const SCHEMA_VERSION: i64 = 1;

/// One snapshot: a run as of an instant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// A stable number: kept when the snapshot is replaced by a run with the same as-of.
    pub id: i64,
    /// The as-of instant, RFC 3339 in UTC.
    pub as_of: String,
    /// The as-of instant, microseconds since the epoch.
    #[serde(skip)]
    pub as_of_micros: i64,
    /// When the run was written, RFC 3339 in UTC.
    pub written_at: String,
    /// The run folder.
    pub run_dir: PathBuf,
    /// Entities in the run.
    pub entities: u64,
    /// Segments in the run.
    pub segments: u64,
}

/// What a run adds to the catalog.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    /// The as-of instant, RFC 3339 in UTC.
    pub as_of: &'a str,
    /// The as-of instant, microseconds since the epoch.
    pub as_of_micros: i64,
    /// The run folder.
    pub run_dir: &'a Path,
    /// Entities in the run.
    pub entities: u64,
    /// Segments in the run.
    pub segments: u64,
}

/// An error of the store's SQLite file about `what` (`the catalog`, `the token table`).
pub(crate) fn sqlite_error<'a>(path: &'a Path, what: &'static str) -> impl Fn(rusqlite::Error) -> Error + 'a {
    move |e| Error::Layout { path: path.to_path_buf(), message: format!("{what}: {e}") }
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    sqlite_error(path, "the catalog")
}

/// Opens the store's SQLite file at `root` for writing (the folder and the file are created
/// when missing), waiting up to 10 s for another writer; the catalog, the tokens and the run log
/// share it.
pub(crate) fn open_store_db(root: &Path, what: &'static str) -> Result<(Connection, PathBuf)> {
    std::fs::create_dir_all(root).map_err(|source| Error::Io {
        action: "create",
        path: root.into(),
        source,
    })?;
    let path = root.join(CATALOG);
    let connection = Connection::open(&path).map_err(sqlite_error(&path, what))?;
    connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(sqlite_error(&path, what))?;
    Ok((connection, path))
}

/// WAL (readers see the last commit while a writer writes) with a sync at every commit.
pub(crate) fn make_durable(connection: &Connection) -> rusqlite::Result<()> {
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")
}

/// A change of membership to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange<'a> {
    /// The segment.
    pub segment: &'a str,
    /// The entity.
    pub entity_id: &'a str,
    /// Entered (else exited).
    pub entered: bool,
}

/// A recorded change of membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its sequence number (ascending, never reused).
    pub seq: i64,
    /// When it was computed, RFC 3339 UTC.
    pub at: String,
    /// The instant the memberships it moved between are as of.
    pub as_of: String,
    /// The segment.
    pub segment: String,
    /// The entity.
    pub entity_id: String,
    /// Entered (else exited).
    pub entered: bool,
}

/// The catalog of a store folder.
pub struct Catalog {
    connection: Connection,
    path: PathBuf,
}

impl Catalog {
    /// Opens (creating when missing) the catalog of the store at `root`.
    pub fn open(root: &Path) -> Result<Catalog> {
        let (connection, path) = open_store_db(root, "the catalog")?;
        let setup = || -> rusqlite::Result<i64> {
            // A catalog of a newer segmenta is refused before anything is written to it.
            let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if version > SCHEMA_VERSION {
                return Ok(version);
            }
            make_durable(&connection)?;
            connection.execute_batch(
                "CREATE TABLE IF NOT EXISTS snapshots (
                    id INTEGER PRIMARY KEY,
                    as_of TEXT NOT NULL,
                    as_of_micros INTEGER NOT NULL UNIQUE,
                    written_at TEXT NOT NULL,
                    run_dir TEXT NOT NULL,
                    entities INTEGER NOT NULL,
                    segments INTEGER NOT NULL
                );
                CREATE TABLE IF NOT EXISTS changes (
                    seq INTEGER PRIMARY KEY,
                    at TEXT NOT NULL,
                    as_of TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    entity_id TEXT NOT NULL,
                    change TEXT NOT NULL
                );",
            )?;
            let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if version == 0 {
                connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            Ok(if version == 0 { SCHEMA_VERSION } else { version })
        };
        let version = setup().map_err(sqlite(&path))?;
        if version != SCHEMA_VERSION {
            return Err(Error::FormatVersion {
                path,
                found: Some(version as u64),
                supported: SCHEMA_VERSION as u32,
            });
        }
        Ok(Catalog { connection, path })
    }

    /// Records a run: a new snapshot, or, for an as-of already recorded, the replacement of
    /// that snapshot (its id kept), in one transaction.
    ///
    /// A run folder inside the store is kept relative to it (the project folder may move). A
    /// snapshot as of another instant that pointed at the same folder (an `--output` written
    /// again) is dropped: its files are gone.
    pub fn record(&mut self, snapshot: &NewSnapshot<'_>) -> Result<Snapshot> {
        let path = self.path.clone();
        let written_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let run_dir = self.stored(snapshot.run_dir);
        let transaction = self.connection.transaction().map_err(sqlite(&path))?;
        transaction
            .execute(
                "DELETE FROM snapshots WHERE run_dir = ?1 AND as_of_micros != ?2",
                params![run_dir, snapshot.as_of_micros],
            )
            .map_err(sqlite(&path))?;
        transaction
            .execute(
                "INSERT INTO snapshots (as_of, as_of_micros, written_at, run_dir, entities, segments)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (as_of_micros) DO UPDATE SET
                    as_of = excluded.as_of, written_at = excluded.written_at, run_dir = excluded.run_dir,
                    entities = excluded.entities, segments = excluded.segments",
                params![
                    snapshot.as_of,
                    snapshot.as_of_micros,
                    written_at,
                    run_dir,
                    snapshot.entities as i64,
                    snapshot.segments as i64
                ],
            )
            .map_err(sqlite(&path))?;
        transaction.commit().map_err(sqlite(&path))?;
        self.by_as_of(snapshot.as_of_micros)?
            .ok_or_else(|| Error::Layout { path, message: "a recorded snapshot is missing".into() })
    }

    /// Drops the snapshots with these ids from the catalog, in one transaction (their run
    /// folders are the caller's to remove, after this).
    pub fn forget(&mut self, ids: &[i64]) -> Result<()> {
        let path = self.path.clone();
        let transaction = self.connection.transaction().map_err(sqlite(&path))?;
        for id in ids {
            transaction.execute("DELETE FROM snapshots WHERE id = ?1", params![id]).map_err(sqlite(&path))?;
        }
        transaction.commit().map_err(sqlite(&path))
    }

    /// Records changes of membership (a server's memberships that follow events), in one
    /// transaction; returns the sequence number of the last (`None` for no changes).
    pub fn record_changes(
        &mut self,
        at: &str,
        as_of: &str,
        changes: &[NewChange<'_>],
    ) -> Result<Option<i64>> {
        if changes.is_empty() {
            return Ok(None);
        }
        let path = self.path.clone();
        let transaction = self.connection.transaction().map_err(sqlite(&path))?;
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO changes (at, as_of, segment, entity_id, change) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sqlite(&path))?;
            for change in changes {
                let kind = if change.entered { "entered" } else { "exited" };
                insert
                    .execute(params![at, as_of, change.segment, change.entity_id, kind])
                    .map_err(sqlite(&path))?;
            }
        }
        let last: i64 = transaction
            .query_row("SELECT max(seq) FROM changes", [], |row| row.get(0))
            .map_err(sqlite(&path))?;
        transaction.commit().map_err(sqlite(&path))?;
        Ok(Some(last))
    }

    /// At most `limit` changes after sequence number `after`, in order; of one segment when
    /// `segment` is given.
    pub fn changes(&self, after: i64, limit: usize, segment: Option<&str>) -> Result<Vec<Change>> {
        let path = &self.path;
        // A catalog opened for reading that no server wrote changes to (one made before there
        // were changes) has no table of them.
        let exists: bool = self
            .connection
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'changes'",
                [],
                |row| row.get(0),
            )
            .map_err(sqlite(path))?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut statement = self
            .connection
            .prepare(
                "SELECT seq, at, as_of, segment, entity_id, change FROM changes
                 WHERE seq > ?1 AND (?2 IS NULL OR segment = ?2) ORDER BY seq LIMIT ?3",
            )
            .map_err(sqlite(path))?;
        let rows = statement
            .query_map(params![after, segment, limit as i64], |row| {
                Ok(Change {
                    seq: row.get(0)?,
                    at: row.get(1)?,
                    as_of: row.get(2)?,
                    segment: row.get(3)?,
                    entity_id: row.get(4)?,
                    entered: row.get::<_, String>(5)? == "entered",
                })
            })
            .map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }

    /// Every snapshot, in as-of order.
    pub fn list(&self) -> Result<Vec<Snapshot>> {
        self.query("ORDER BY as_of_micros", params![])
    }

    /// The snapshot with this id.
    pub fn by_id(&self, id: i64) -> Result<Option<Snapshot>> {
        Ok(self.query("WHERE id = ?1", params![id])?.pop())
    }

    /// The snapshot as of exactly this instant.
    pub fn by_as_of(&self, as_of_micros: i64) -> Result<Option<Snapshot>> {
        Ok(self.query("WHERE as_of_micros = ?1", params![as_of_micros])?.pop())
    }

    /// The store folder.
    fn root(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// How a run folder is stored: relative to the store when inside it, else as given.
    fn stored(&self, run_dir: &Path) -> String {
        let root = self.root().canonicalize().unwrap_or_else(|_| self.root().to_path_buf());
        let relative = run_dir.strip_prefix(&root).unwrap_or(run_dir);
        relative.to_string_lossy().to_string()
    }

    fn query(&self, clause: &str, params: impl rusqlite::Params) -> Result<Vec<Snapshot>> {
        let path = &self.path;
        let sql = format!(
            "SELECT id, as_of, as_of_micros, written_at, run_dir, entities, segments FROM snapshots {clause}"
        );
        let mut statement = self.connection.prepare(&sql).map_err(sqlite(path))?;
        let rows = statement
            .query_map(params, |row| {
                Ok(Snapshot {
                    id: row.get(0)?,
                    as_of: row.get(1)?,
                    as_of_micros: row.get(2)?,
                    written_at: row.get(3)?,
                    run_dir: self.root().join(row.get::<_, String>(4)?),
                    entities: row.get::<_, i64>(5)? as u64,
                    segments: row.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }
}

/// The catalog of the store at `root` opened for reading, if it has one (`None` before the
/// first run). Nothing is created or written, so a read-only store can be read.
pub fn existing(root: &Path) -> Result<Option<Catalog>> {
    let path = root.join(CATALOG);
    if !path.is_file() {
        return Ok(None);
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(&path, flags).map_err(sqlite(&path))?;
    let version = (|| -> rusqlite::Result<i64> {
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.pragma_query_value(None, "user_version", |row| row.get(0))
    })()
    .map_err(sqlite(&path))?;
    // Version 0: the file holds other tables (the API tokens) but no snapshot was recorded.
    if version == 0 {
        return Ok(None);
    }
    if version != SCHEMA_VERSION {
        return Err(Error::FormatVersion {
            path,
            found: Some(version as u64),
            supported: SCHEMA_VERSION as u32,
        });
    }
    Ok(Some(Catalog { connection, path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lists_and_replaces_by_as_of() {
        let dir = tempfile::tempdir().expect("a folder");
        let mut catalog = Catalog::open(dir.path()).expect("opens");
        let run = |as_of: &'static str, micros, folder: &'static str, entities| NewSnapshot {
            as_of,
            as_of_micros: micros,
            run_dir: Path::new(folder),
            entities,
            segments: 2,
        };
        let first = catalog.record(&run("2025-02-01T00:00:00Z", 20, "runs/b", 10)).expect("records");
        let second = catalog.record(&run("2025-01-01T00:00:00Z", 10, "runs/a", 9)).expect("records");
        assert_ne!(first.id, second.id);
        let replaced = catalog.record(&run("2025-02-01T00:00:00Z", 20, "runs/c", 11)).expect("replaces");
        assert_eq!(replaced.id, first.id, "the id is kept");
        assert_eq!((replaced.run_dir.clone(), replaced.entities), (dir.path().join("runs/c"), 11));
        drop(catalog);
        let catalog = existing(dir.path()).expect("reads").expect("exists");
        let all = catalog.list().expect("lists");
        let listed: Vec<(i64, PathBuf)> = all.iter().map(|s| (s.as_of_micros, s.run_dir.clone())).collect();
        let expected = [(10, dir.path().join("runs/a")), (20, dir.path().join("runs/c"))];
        assert_eq!(listed, expected, "in as-of order, one per as-of");
        assert_eq!(catalog.by_id(second.id).expect("reads").map(|s| s.as_of_micros), Some(10));
        assert_eq!(catalog.by_as_of(30).expect("reads"), None);
        assert!(existing(&dir.path().join("none")).expect("reads").is_none());
        // A catalog of a newer version is refused, read or written, and left as it was.
        let newer = tempfile::tempdir().expect("a folder");
        let connection = Connection::open(newer.path().join(CATALOG)).expect("opens");
        connection.pragma_update(None, "user_version", 2).expect("sets");
        drop(connection);
        assert!(matches!(Catalog::open(newer.path()), Err(Error::FormatVersion { found: Some(2), .. })));
        assert!(matches!(existing(newer.path()), Err(Error::FormatVersion { found: Some(2), .. })));
        let connection = Connection::open(newer.path().join(CATALOG)).expect("opens");
        let tables: i64 =
            connection.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0)).expect("reads");
        assert_eq!(tables, 0, "nothing was created in it");
        // A folder written again as of another instant: the older snapshot of it is dropped.
        let mut catalog = Catalog::open(dir.path()).expect("opens");
        catalog.record(&run("2025-03-01T00:00:00Z", 30, "runs/a", 8)).expect("records");
        let as_of: Vec<i64> = catalog.list().expect("lists").iter().map(|s| s.as_of_micros).collect();
        assert_eq!(as_of, [20, 30]);
    }

    #[test]
    fn changes_are_numbered_in_order_paged_and_filtered() {
        let dir = tempfile::tempdir().expect("a folder");
        // A catalog made before there were changes (no such table) reads as none.
        let connection = Connection::open(dir.path().join(CATALOG)).expect("opens");
        connection.execute_batch("CREATE TABLE snapshots (id INTEGER PRIMARY KEY);").expect("creates");
        connection.pragma_update(None, "user_version", SCHEMA_VERSION).expect("sets");
        drop(connection);
        assert_eq!(
            existing(dir.path()).expect("reads").expect("exists").changes(0, 10, None).expect("none"),
            []
        );
        let mut catalog = Catalog::open(dir.path()).expect("opens");
        assert_eq!(catalog.record_changes("t0", "a", &[]).expect("nothing"), None);
        let change = |segment, entity_id, entered| NewChange { segment, entity_id, entered };
        let last = catalog
            .record_changes(
                "t1",
                "2025-01-01T00:00:00Z",
                &[change("s", "a1", true), change("t", "a2", false)],
            )
            .expect("records");
        assert_eq!(last, Some(2));
        let last = catalog
            .record_changes("t2", "2025-01-01T00:00:00Z", &[change("s", "a3", true)])
            .expect("records");
        assert_eq!(last, Some(3));
        let catalog = existing(dir.path()).expect("reads").expect("exists");
        let all = catalog.changes(0, 10, None).expect("reads");
        let seen: Vec<(i64, &str, &str, bool)> =
            all.iter().map(|c| (c.seq, c.segment.as_str(), c.entity_id.as_str(), c.entered)).collect();
        assert_eq!(seen, [(1, "s", "a1", true), (2, "t", "a2", false), (3, "s", "a3", true)]);
        assert_eq!(all[2].at, "t2");
        let page: Vec<i64> = catalog.changes(1, 1, None).expect("reads").iter().map(|c| c.seq).collect();
        assert_eq!(page, [2]);
        let of_s: Vec<i64> =
            catalog.changes(0, 10, Some("s")).expect("reads").iter().map(|c| c.seq).collect();
        assert_eq!(of_s, [1, 3]);
    }
}
