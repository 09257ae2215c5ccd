//! API tokens of `segmenta serve`: a `tokens` table in the store's SQLite file (the catalog's
//! `catalog.sqlite`, WAL mode), holding for each token its name, role, a short prefix to
//! recognise it by and the SHA-256 of the whole token, never the token itself. Creating,
//! listing and revoking are single statements, so a server reading the table while the CLI
//! changes it sees each change whole.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result};

/// One stored token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// A stable number.
    pub id: i64,
    /// The name given at creation (unique among tokens not revoked).
    pub name: String,
    /// The role's name (`viewer`, `editor`, `admin`).
    pub role: String,
    /// The first characters of the token, to recognise it in a list.
    pub prefix: String,
    /// When it was created, RFC 3339 in UTC.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// What creating a token records.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its role's name.
    pub role: &'a str,
    /// The first characters of the token.
    pub prefix: &'a str,
    /// The SHA-256 of the token, lowercase hex.
    pub hash: &'a str,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    crate::catalog::sqlite_error(path, "the token table")
}

/// The token table of a store folder.
pub struct Tokens {
    connection: Connection,
    path: PathBuf,
}

impl Tokens {
    /// Opens (creating when missing) the token table of the store at `root`.
    pub fn open(root: &Path) -> Result<Tokens> {
        let (connection, path) = crate::catalog::open_store_db(root, "the token table")?;
        (|| -> rusqlite::Result<()> {
            crate::catalog::make_durable(&connection)?;
            connection.execute_batch(
                "CREATE TABLE IF NOT EXISTS tokens (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    prefix TEXT NOT NULL,
                    hash TEXT NOT NULL UNIQUE,
                    created_at TEXT NOT NULL,
                    revoked_at TEXT
                );
                CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;",
            )
        })()
        .map_err(sqlite(&path))?;
        Ok(Tokens { connection, path })
    }

    /// Records a new token; `None` when a token not revoked already has that name.
    pub fn create(&self, token: &NewToken<'_>) -> Result<Option<StoredToken>> {
        let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let inserted = self.connection.execute(
            "INSERT INTO tokens (name, role, prefix, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token.name, token.role, token.prefix, token.hash, created_at],
        );
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Ok(None);
            }
            Err(e) => return Err(sqlite(&self.path)(e)),
        }
        let id = self.connection.last_insert_rowid();
        Ok(self.query("WHERE id = ?1", params![id])?.pop())
    }

    /// Every token, revoked ones included, in creation order.
    pub fn list(&self) -> Result<Vec<StoredToken>> {
        self.query("ORDER BY id", params![])
    }

    /// The tokens not revoked, with their hashes: what a server checks requests against.
    pub fn live(&self) -> Result<Vec<(String, StoredToken)>> {
        let path = &self.path;
        let mut statement = self
            .connection
            .prepare(
                "SELECT hash, id, name, role, prefix, created_at, revoked_at FROM tokens
                 WHERE revoked_at IS NULL ORDER BY id",
            )
            .map_err(sqlite(path))?;
        let rows = statement
            .query_map(params![], |row| Ok((row.get::<_, String>(0)?, stored(row, 1)?)))
            .map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }

    /// Revokes the live token named `name`; the revoked token, or `None` when there is none.
    pub fn revoke(&self, name: &str) -> Result<Option<StoredToken>> {
        let path = &self.path;
        let revoked_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let id: Option<i64> = self
            .connection
            .query_row(
                "UPDATE tokens SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL RETURNING id",
                params![revoked_at, name],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite(path))?;
        match id {
            Some(id) => Ok(self.query("WHERE id = ?1", params![id])?.pop()),
            None => Ok(None),
        }
    }

    fn query(&self, clause: &str, params: impl rusqlite::Params) -> Result<Vec<StoredToken>> {
        let path = &self.path;
        let sql = format!("SELECT id, name, role, prefix, created_at, revoked_at FROM tokens {clause}");
        let mut statement = self.connection.prepare(&sql).map_err(sqlite(path))?;
        let rows = statement.query_map(params, |row| stored(row, 0)).map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }
}

fn stored(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredToken> {
    Ok(StoredToken {
        id: row.get(first)?,
        name: row.get(first + 1)?,
        role: row.get(first + 2)?,
        prefix: row.get(first + 3)?,
        created_at: row.get(first + 4)?,
        revoked_at: row.get(first + 5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_lists_and_revokes_by_name() {
        let dir = tempfile::tempdir().expect("a folder");
        let tokens = Tokens::open(dir.path()).expect("opens");
        let new = |name, hash| NewToken { name, role: "viewer", prefix: "sgm_abcd", hash };
        let first = tokens.create(&new("ci", "h1")).expect("creates").expect("a new name");
        assert_eq!((first.name.as_str(), first.revoked_at.as_deref()), ("ci", None));
        assert!(tokens.create(&new("ci", "h2")).expect("runs").is_none(), "a live name is unique");
        assert_eq!(tokens.live().expect("lists").len(), 1);
        let revoked = tokens.revoke("ci").expect("revokes").expect("it was live");
        assert!(revoked.revoked_at.is_some());
        assert!(tokens.revoke("ci").expect("runs").is_none(), "nothing left to revoke");
        assert!(tokens.live().expect("lists").is_empty());
        // A revoked name can be given again; the list keeps both.
        tokens.create(&new("ci", "h3")).expect("creates").expect("the name is free again");
        assert_eq!(tokens.list().expect("lists").len(), 2);
        // The catalog shares the file: no snapshot yet, and it still opens.
        assert!(crate::catalog::existing(dir.path()).expect("reads").is_none());
        crate::catalog::Catalog::open(dir.path()).expect("the catalog opens beside the tokens");
    }
}
