//! API tokens and roles of `segmenta serve`: creating a token (its secret is shown once and
//! stored only as a SHA-256), listing and revoking them, and checking a presented token.
//!
//! A token is `sgm_` and 64 hex digits: 32 bytes from the thread-local CSPRNG (ChaCha seeded
//! from the operating system). With that much entropy a plain SHA-256 is the right hash (a slow
//! password hash protects guessable secrets, and costs every request); the table holds the
//! hash, the name, the role and the first 8 characters, so `token list` can show which is which.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use segmenta_store::tokens::{NewToken, StoredToken, Tokens};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::project::Project;

/// What a token may do. Each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads: segments, members, entities, explanations, previews, runs.
    Viewer,
    /// Also changes: segments, runs, events.
    Editor,
    /// Also administers: erasures and whatever later needs the most trust.
    Admin,
}

impl Role {
    /// Every role, from the least to the most trusted.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// The role named `text`.
    pub fn parse(text: &str) -> Result<Role> {
        Role::ALL.into_iter().find(|r| r.name() == text).ok_or_else(|| Error::Usage {
            message: format!("unknown role `{text}`"),
            hint: Some("use viewer (reads), editor (also changes segments, runs and events) or admin".into()),
        })
    }
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its first characters (`sgm_` and four hex digits).
    pub prefix: String,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// A new token: the secret is in no file and cannot be shown again.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// The token as listed.
    pub token: ApiToken,
    /// The token to send as `Authorization: Bearer …`.
    pub secret: String,
}

/// The text every token starts with.
pub const TOKEN_PREFIX: &str = "sgm_";

/// How long a server trusts its copy of the token table: a revocation takes effect within this.
pub const TOKEN_REFRESH: Duration = Duration::from_secs(1);

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn listed(stored: StoredToken) -> Result<ApiToken> {
    Ok(ApiToken {
        role: Role::parse(&stored.role).map_err(|_| {
            Error::Internal(format!("token `{}` has an unknown role `{}`", stored.name, stored.role))
        })?,
        name: stored.name,
        prefix: stored.prefix,
        created_at: stored.created_at,
        revoked_at: stored.revoked_at,
    })
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        return Ok(());
    }
    Err(Error::Usage {
        message: format!("invalid token name `{name}`"),
        hint: Some("use 1 to 64 letters, digits, `-`, `_` or `.` (e.g. crm-sync)".into()),
    })
}

/// Creates a token named `name` with `role` in the project's store.
pub fn create_token(project: &Project, role: Role, name: &str) -> Result<CreatedToken> {
    check_name(name)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", hex(&bytes));
    let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 4).collect();
    let tokens = Tokens::open(&project.store_dir())?;
    let hashed = hash(&secret);
    let stored = tokens
        .create(&NewToken { name, role: role.name(), prefix: &prefix, hash: &hashed })?
        .ok_or_else(|| Error::Usage {
            message: format!("a token named `{name}` exists"),
            hint: Some(format!("choose another name, or revoke it first: segmenta token revoke {name}")),
        })?;
    Ok(CreatedToken { token: listed(stored)?, secret })
}

/// Every token of the project, revoked ones included, in creation order.
pub fn list_tokens(project: &Project) -> Result<Vec<ApiToken>> {
    Tokens::open(&project.store_dir())?.list()?.into_iter().map(listed).collect()
}

/// Revokes the token named `name`.
pub fn revoke_token(project: &Project, name: &str) -> Result<ApiToken> {
    let tokens = Tokens::open(&project.store_dir())?;
    match tokens.revoke(name)? {
        Some(revoked) => listed(revoked),
        None => {
            let live: Vec<String> = tokens.live()?.into_iter().map(|(_, t)| t.name).collect();
            let hint = match segmenta_core::config::did_you_mean(name, live.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None if live.is_empty() => "the project has no live tokens".into(),
                None => format!("live tokens: {}", live.join(", ")),
            };
            Err(Error::UnknownToken { name: name.to_string(), hint })
        }
    }
}

/// Checks presented tokens against the project's token table, which it re-reads at most every
/// [`TOKEN_REFRESH`] with one `SELECT` on a connection it keeps (so a request costs a hash and a
/// map lookup, cheap enough for a server's async threads, and a token created or revoked by the
/// CLI while a server runs counts within a second).
pub struct TokenVerifier {
    store: PathBuf,
    cache: Mutex<VerifierCache>,
}

#[derive(Default)]
struct VerifierCache {
    /// The token table, opened on first use and kept (a refresh is one `SELECT`).
    table: Option<Tokens>,
    /// The live tokens by hash, and when they were read.
    live: Option<(Instant, HashMap<String, ApiToken>)>,
}

impl TokenVerifier {
    /// A verifier of the project's tokens.
    pub fn new(project: &Project) -> TokenVerifier {
        TokenVerifier { store: project.store_dir(), cache: Mutex::new(VerifierCache::default()) }
    }

    /// The live token whose secret is `secret`, if any.
    pub fn verify(&self, secret: &str) -> Result<Option<ApiToken>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hashed = hash(secret);
        let mut cache =
            self.cache.lock().map_err(|_| Error::Internal("the token cache is poisoned".into()))?;
        let fresh = cache.live.as_ref().is_some_and(|(read, _)| read.elapsed() < TOKEN_REFRESH);
        if !fresh {
            let table = match cache.table.take() {
                Some(table) => table,
                None => Tokens::open(&self.store)?,
            };
            let live = table
                .live()?
                .into_iter()
                .map(|(hash, stored)| Ok((hash, listed(stored)?)))
                .collect::<Result<HashMap<_, _>>>()?;
            cache.table = Some(table);
            cache.live = Some((Instant::now(), live));
        }
        Ok(cache.live.as_ref().and_then(|(_, live)| live.get(&hashed).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn roles_are_ordered_by_trust_and_parse_by_name() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()).expect("parses"), role);
        }
        assert_eq!(Role::parse("owner").expect_err("unknown").code(), "usage");
    }

    #[test]
    fn token_names_are_short_and_plain() {
        for good in ["ci", "crm-sync", "a.b_c", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "with space", "é", &"x".repeat(65), "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        // The SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
