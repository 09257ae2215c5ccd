//! The runs a server started (`POST /v1/runs`), in the `server_runs` table of the store's SQLite
//! file: one row per run, inserted when it starts and updated when it ends, so that the list
//! and each run's outcome survive a restart of the server. A row left `running` by a server
//! that stopped is marked `interrupted` when the next one opens the table.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use crate::{Error, Result};

/// One run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRun {
    /// Its id (increasing across restarts).
    pub id: i64,
    /// `running`, `succeeded`, `failed` or `interrupted`.
    pub state: String,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
    /// The as-of asked for.
    pub requested_as_of: Option<String>,
    /// The run's as-of, once written.
    pub as_of: Option<String>,
    /// Its run folder, once written.
    pub output: Option<String>,
    /// Entities, once written.
    pub entities: Option<i64>,
    /// Segment sizes as JSON (`[[name, size, share], …]`), once written.
    pub segments: Option<String>,
    /// Why it failed: code, message, hint.
    pub error: Option<(String, String, Option<String>)>,
}

impl LoggedRun {
    /// The end of run `id` as [`RunLog::finish`] records it: `state` at `finished_at`, with
    /// nothing else known yet.
    pub fn ended(id: i64, state: &str, finished_at: String) -> LoggedRun {
        LoggedRun {
            id,
            state: state.to_string(),
            started_at: String::new(),
            finished_at: Some(finished_at),
            requested_as_of: None,
            as_of: None,
            output: None,
            entities: None,
            segments: None,
            error: None,
        }
    }
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    crate::catalog::sqlite_error(path, "the run log")
}

/// The run log of a store folder.
pub struct RunLog {
    connection: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "id, state, started_at, finished_at, requested_as_of, as_of, output, entities, segments, \
                       error_code, error_message, error_hint";

impl RunLog {
    /// Opens (creating when missing) the run log of the store at `root`, marking the runs a
    /// stopped server left `running` as `interrupted`.
    pub fn open(root: &Path, now: &str) -> Result<RunLog> {
        let (connection, path) = crate::catalog::open_store_db(root, "the run log")?;
        (|| -> rusqlite::Result<()> {
            crate::catalog::make_durable(&connection)?;
            connection.execute_batch(
                "CREATE TABLE IF NOT EXISTS server_runs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    state TEXT NOT NULL,
                    started_at TEXT NOT NULL,
                    finished_at TEXT,
                    requested_as_of TEXT,
                    as_of TEXT,
                    output TEXT,
                    entities INTEGER,
                    segments TEXT,
                    error_code TEXT,
                    error_message TEXT,
                    error_hint TEXT
                );",
            )?;
            connection.execute(
                "UPDATE server_runs SET state = 'interrupted', finished_at = ?1, error_code = 'interrupted',
                    error_message = 'the server stopped before the run finished; nothing of it was kept',
                    error_hint = 'start the run again'
                 WHERE state = 'running'",
                params![now],
            )?;
            Ok(())
        })()
        .map_err(sqlite(&path))?;
        Ok(RunLog { connection, path })
    }

    /// Records a run that starts now: `Ok(its id)`, or `Err(the running one's id)` when one
    /// is running.
    pub fn start(
        &self,
        started_at: &str,
        requested_as_of: Option<&str>,
    ) -> Result<std::result::Result<i64, i64>> {
        let path = &self.path;
        let running: Option<i64> = self
            .connection
            .query_row("SELECT id FROM server_runs WHERE state = 'running' ORDER BY id LIMIT 1", [], |row| {
                row.get(0)
            })
            .map(Some)
            .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })
            .map_err(sqlite(path))?;
        if let Some(id) = running {
            return Ok(Err(id));
        }
        self.connection
            .execute(
                "INSERT INTO server_runs (state, started_at, requested_as_of) VALUES ('running', ?1, ?2)",
                params![started_at, requested_as_of],
            )
            .map_err(sqlite(path))?;
        Ok(Ok(self.connection.last_insert_rowid()))
    }

    /// Records how run `id` ended.
    pub fn finish(&self, run: &LoggedRun) -> Result<()> {
        let (code, message, hint) = match &run.error {
            Some((code, message, hint)) => (Some(code.as_str()), Some(message.as_str()), hint.as_deref()),
            None => (None, None, None),
        };
        self.connection
            .execute(
                "UPDATE server_runs SET state = ?2, finished_at = ?3, as_of = ?4, output = ?5, entities = ?6,
                    segments = ?7, error_code = ?8, error_message = ?9, error_hint = ?10 WHERE id = ?1",
                params![
                    run.id,
                    run.state,
                    run.finished_at,
                    run.as_of,
                    run.output,
                    run.entities,
                    run.segments,
                    code,
                    message,
                    hint
                ],
            )
            .map_err(sqlite(&self.path))?;
        Ok(())
    }

    /// Every run, newest first.
    pub fn list(&self) -> Result<Vec<LoggedRun>> {
        self.query("ORDER BY id DESC", params![])
    }

    /// Run `id`.
    pub fn get(&self, id: i64) -> Result<Option<LoggedRun>> {
        Ok(self.query("WHERE id = ?1", params![id])?.pop())
    }

    fn query(&self, clause: &str, params: impl rusqlite::Params) -> Result<Vec<LoggedRun>> {
        let path = &self.path;
        let sql = format!("SELECT {COLUMNS} FROM server_runs {clause}");
        let mut statement = self.connection.prepare(&sql).map_err(sqlite(path))?;
        let rows = statement
            .query_map(params, |row| {
                let code: Option<String> = row.get(9)?;
                let message: Option<String> = row.get(10)?;
                Ok(LoggedRun {
                    id: row.get(0)?,
                    state: row.get(1)?,
                    started_at: row.get(2)?,
                    finished_at: row.get(3)?,
                    requested_as_of: row.get(4)?,
                    as_of: row.get(5)?,
                    output: row.get(6)?,
                    entities: row.get(7)?,
                    segments: row.get(8)?,
                    error: code.map(|code| (code, message.unwrap_or_default(), row.get(11).ok().flatten())),
                })
            })
            .map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_kept_one_runs_at_a_time_and_an_abandoned_one_is_interrupted() {
        let dir = tempfile::tempdir().expect("a folder");
        let log = RunLog::open(dir.path(), "t0").expect("opens");
        let first = log.start("t1", Some("2025-01-31")).expect("records").expect("none running");
        assert_eq!(log.start("t2", None).expect("records"), Err(first), "one at a time");
        let mut run = log.get(first).expect("reads").expect("recorded");
        run.state = "succeeded".into();
        run.finished_at = Some("t3".into());
        run.entities = Some(3);
        log.finish(&run).expect("records");
        let second = log.start("t4", None).expect("records").expect("none running");
        assert!(second > first);
        drop(log);
        // A server that stopped left `second` running: the next one marks it interrupted.
        let log = RunLog::open(dir.path(), "t5").expect("opens");
        let runs = log.list().expect("lists");
        assert_eq!(
            runs.iter().map(|r| (r.id, r.state.as_str())).collect::<Vec<_>>(),
            [(second, "interrupted"), (first, "succeeded")]
        );
        assert_eq!(runs[0].error.as_ref().map(|e| e.0.as_str()), Some("interrupted"));
        assert_eq!(runs[1].entities, Some(3));
        assert!(crate::catalog::existing(dir.path()).expect("reads").is_none(), "no snapshot recorded");
    }
}
