//! Backups of the SQLite database while the gateway runs, and restoring one into a data
//! dir that holds no database yet. PostgreSQL has its own tools for both (`pg_dump`,
//! `pg_restore`; docs/operations.md).
//!
//! A backup holds the secrets sealed, never their master keys: those are kept apart (the
//! point of sealing), and a restore checks that the keys it is given open every secret in
//! the copy — the saved Klarna tokens too — before it puts the copy in place.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use crate::db::{Backend, Db};
use crate::error::GatewayError;
use crate::secrets::customer_token_name;
use crate::vault::{Sealed, Vault};

/// The schema version that brought `customer_tokens` (migration `0006_customer_tokens`).
const SAVED_KLARNA_SCHEMA: i64 = 6;

/// What a backup file holds, read from the file itself.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub file: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    pub payments: i64,
    pub sessions: i64,
    pub webhook_events: i64,
    /// The sealed secrets' names (never their values).
    pub secrets: Vec<String>,
    /// Shoppers' saved Klarna, each sealed like a secret (schema 6 on).
    pub saved_klarna: i64,
}

/// The file behind a `sqlite:` database URL.
pub fn sqlite_file(database_url: &str) -> Result<PathBuf, GatewayError> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            GatewayError::Config(
                "backup and restore copy the SQLite database; on PostgreSQL use pg_dump and pg_restore (docs/operations.md)".into(),
            )
        })?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(GatewayError::Config(format!(
            "the database {database_url:?} is not a file"
        )));
    }
    Ok(PathBuf::from(path))
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> GatewayError {
    GatewayError::Config(format!("cannot {what} {}: {e}", path.display()))
}

/// A new file only readable by its owner: the copy holds personal data. It never replaces
/// an existing one.
fn create_private(path: &Path) -> Result<File, GatewayError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            GatewayError::Config(format!(
                "{} exists: a backup or restore never overwrites a file",
                path.display()
            ))
        } else {
            io("create", path, &e)
        }
    })
}

/// Flushes the file and the directory entry naming it, so the copy survives a power cut.
fn sync(path: &Path) -> Result<(), GatewayError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("sync", path, &e))?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("sync", dir, &e))?;
    }
    Ok(())
}

/// Copies the database at `database_url` into the new file `to` while the gateway keeps
/// serving: `VACUUM INTO` reads one consistent snapshot (a read transaction, which in WAL
/// mode blocks no writer) and writes it out compacted. The database is not migrated.
pub async fn backup(database_url: &str, to: &Path) -> Result<Summary, GatewayError> {
    let source = sqlite_file(database_url)?;
    if !source.is_file() {
        return Err(GatewayError::Config(format!(
            "no database at {}: check --data-dir / --database-url",
            source.display()
        )));
    }
    drop(create_private(to)?);
    let copied = async {
        let db = Db::open(database_url).await?;
        let to_text = to
            .to_str()
            .ok_or_else(|| GatewayError::Config(format!("{} is not UTF-8", to.display())))?;
        sqlx::query("VACUUM INTO $1")
            .bind(to_text)
            .execute(&db.pool)
            .await?;
        db.pool.close().await;
        sync(to)?;
        inspect(to).await
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// Reads a backup without changing it: its integrity, schema version and contents.
pub async fn inspect(file: &Path) -> Result<Summary, GatewayError> {
    Ok(read(file).await?.0)
}

async fn read(file: &Path) -> Result<(Summary, Vec<(String, Sealed)>), GatewayError> {
    let not_a_backup = |e: sqlx::Error| {
        GatewayError::Config(format!("{} is not a gateway backup: {e}", file.display()))
    };
    let bytes = std::fs::metadata(file)
        .map_err(|e| io("read", file, &e))?
        .len();
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(file)
            .read_only(true)
            .immutable(true),
    )
    .await
    .map_err(not_a_backup)?;
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(not_a_backup)?;
    if check != "ok" {
        return Err(GatewayError::Config(format!(
            "{} is damaged: {check}",
            file.display()
        )));
    }
    let (schema_version,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .map_err(not_a_backup)?;
    let count = async |conn: &mut SqliteConnection, table: &str| {
        sqlx::query_as::<_, (i64,)>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(conn)
            .await
            .map(|(n,)| n)
            .map_err(not_a_backup)
    };
    let payments = count(&mut conn, "transactions").await?;
    let sessions = count(&mut conn, "sessions").await?;
    let webhook_events = count(&mut conn, "webhook_events").await?;
    let sealed: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT name, key_id, nonce, ciphertext FROM secrets ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .map_err(not_a_backup)?;
    // A shopper's saved Klarna is sealed under its own name: a restore whose keys cannot
    // open it would leave a token Odoo offers and the gateway cannot charge.
    let tokens: Vec<(String, String, String, String)> =
        if schema_version.unwrap_or(0) >= SAVED_KLARNA_SCHEMA {
            sqlx::query_as(
                "SELECT reference, key_id, nonce, ciphertext FROM customer_tokens ORDER BY id",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(not_a_backup)?
        } else {
            Vec::new()
        };
    conn.close().await.map_err(not_a_backup)?;
    let saved_klarna = i64::try_from(tokens.len()).unwrap_or(i64::MAX);
    let tokens = tokens
        .into_iter()
        .map(|(reference, k, n, c)| (customer_token_name(&reference), k, n, c));
    let secrets: Vec<String> = sealed.iter().map(|(name, ..)| name.clone()).collect();
    let sealed: Vec<(String, Sealed)> = sealed
        .into_iter()
        .chain(tokens)
        .map(|(name, key_id, nonce, ciphertext)| {
            (
                name,
                Sealed {
                    key_id,
                    nonce,
                    ciphertext,
                },
            )
        })
        .collect();
    Ok((
        Summary {
            file: file.to_path_buf(),
            bytes,
            schema_version: schema_version.unwrap_or(0),
            payments,
            sessions,
            webhook_events,
            secrets,
            saved_klarna,
        },
        sealed,
    ))
}

/// Puts the backup `from` in place as the database at `database_url`, which must not
/// exist yet, after checking that it is whole, that this binary knows its schema, and
/// that `vault` opens every secret sealed in it (saved Klarna tokens included). The copy
/// is written beside the target and renamed into place, so a failed restore leaves no half
/// database behind. The schema is brought forward when the gateway next opens it.
pub async fn restore(
    from: &Path,
    database_url: &str,
    vault: &Vault,
) -> Result<Summary, GatewayError> {
    let target = sqlite_file(database_url)?;
    let mut in_the_way = vec![target.clone()];
    for suffix in ["-wal", "-shm"] {
        let mut name = target.clone().into_os_string();
        name.push(suffix);
        in_the_way.push(PathBuf::from(name));
    }
    if let Some(there) = in_the_way.iter().find(|p| p.exists()) {
        return Err(GatewayError::Config(format!(
            "{} exists: restore into a data dir without a database (move the old one aside first)",
            there.display()
        )));
    }
    let (summary, sealed) = read(from).await?;
    let known = Db::known_schema(Backend::Sqlite);
    if summary.schema_version > known {
        return Err(GatewayError::Config(format!(
            "{} is at schema version {}, from a newer klarna-gateway; this one knows versions up to {known}: restore it with the version that made it",
            from.display(),
            summary.schema_version
        )));
    }
    let unopened = vault.unopened(sealed.iter().map(|(n, s)| (n, s)));
    if !unopened.is_empty() {
        return Err(GatewayError::Config(format!(
            "the master keys given do not open {}: put the master.keys saved with this backup in the data dir (or set GATEWAY_MASTER_KEYS) and restore again",
            unopened.join(", ")
        )));
    }
    let mut partial = target.clone().into_os_string();
    partial.push(".restoring");
    let partial = PathBuf::from(partial);
    let copied = (|| {
        let mut out = create_private(&partial)?;
        let mut input = File::open(from).map_err(|e| io("read", from, &e))?;
        std::io::copy(&mut input, &mut out).map_err(|e| io("write", &partial, &e))?;
        out.sync_all().map_err(|e| io("sync", &partial, &e))
    })();
    let released = match copied {
        Ok(()) => release_leases(&partial).await,
        Err(e) => Err(e),
    };
    let placed = released.and_then(|()| {
        std::fs::rename(&partial, &target).map_err(|e| io("rename into", &target, &e))?;
        sync(&target)
    });
    if placed.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    placed?;
    Ok(summary)
}

/// Jobs that were running when the backup was taken belong to no process now: their
/// leases are ended so a worker takes them over at once instead of when they run out.
/// (Every job is written to be run again after a crash.)
async fn release_leases(file: &Path) -> Result<(), GatewayError> {
    let mut conn =
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(file)).await?;
    sqlx::query("UPDATE jobs SET locked_until = 0 WHERE state = 'running'")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_behind_a_database_url() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/g/gateway.db?mode=rwc").ok(),
            Some(PathBuf::from("/var/lib/g/gateway.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:data/gateway.db").ok(),
            Some(PathBuf::from("data/gateway.db"))
        );
        let pg = sqlite_file("postgres://g@db/gateway").map_err(|e| e.to_string());
        assert!(pg.is_err_and(|e| e.contains("pg_dump")));
        assert!(sqlite_file("sqlite::memory:").is_err());
    }

    async fn gateway_db(dir: &Path) -> (String, Vault) {
        let url = format!("sqlite://{}", dir.join("gateway.db").display());
        let db = Db::connect(&url).await.expect("db");
        let vault = Vault::ephemeral();
        db.put_sealed(
            "admin.token",
            &vault.seal("admin.token", b"t0ken").expect("seal"),
        )
        .await
        .expect("put");
        db.pool.close().await;
        (url, vault)
    }

    #[tokio::test]
    async fn a_backup_restores_only_with_the_keys_that_sealed_it_and_never_over_a_database() {
        let dir = tempfile::tempdir().expect("dir");
        let (url, vault) = gateway_db(dir.path()).await;
        let file = dir.path().join("copy.db");
        let summary = backup(&url, &file).await.expect("backup");
        assert_eq!(summary.secrets, ["admin.token"]);
        assert_eq!(summary.schema_version, Db::known_schema(Backend::Sqlite));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = backup(&url, &file).await.map_err(|e| e.to_string());
        assert!(again.is_err_and(|e| e.contains("never overwrites")));

        let other = tempfile::tempdir().expect("dir");
        let new_url = format!("sqlite://{}", other.path().join("gateway.db").display());
        let wrong = restore(&file, &new_url, &Vault::ephemeral())
            .await
            .map_err(|e| e.to_string());
        assert!(
            wrong
                .as_ref()
                .is_err_and(|e| e.contains("admin.token (sealed with key")),
            "{wrong:?}"
        );
        assert!(!other.path().join("gateway.db").exists());

        restore(&file, &new_url, &vault).await.expect("restore");
        let restored = Db::connect(&new_url).await.expect("open");
        let sealed = restored.sealed_secrets().await.expect("secrets");
        assert_eq!(
            vault
                .open_sealed("admin.token", &sealed[0].1)
                .expect("open")
                .as_str(),
            "t0ken"
        );
        let twice = restore(&file, &new_url, &vault)
            .await
            .map_err(|e| e.to_string());
        assert!(twice.is_err_and(|e| e.contains("without a database")));
    }

    #[tokio::test]
    async fn what_is_not_a_backup_is_named_and_nothing_is_put_in_place() {
        let dir = tempfile::tempdir().expect("dir");
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all, just text").expect("write");
        let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
        let refused = restore(&junk, &url, &Vault::ephemeral())
            .await
            .map_err(|e| e.to_string());
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("junk.db")),
            "{refused:?}"
        );
        assert!(!dir.path().join("gateway.db").exists());
        assert!(!dir.path().join("gateway.db.restoring").exists());
    }
}
