//! The database: SQLite (the embedded default) or PostgreSQL (several instances at once),
//! behind one pool and one set of queries.
//!
//! Queries are written once, with `$1, $2, …` placeholders: PostgreSQL's own, and sqlx's
//! SQLite driver binds `$N` by position too. The few places where the dialects differ —
//! claiming a job with `FOR UPDATE SKIP LOCKED`, taking SQLite's write lock up front, the
//! batch inserts' anonymous `?` on SQLite (`store::values_rows`) — ask [`Backend`].

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor};

use crate::error::GatewayError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if it names one of ours.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Db {
    /// Opens `sqlite://…` (created if missing, WAL) or `postgres://…`, and migrates it.
    pub async fn connect(url: &str) -> Result<Self, GatewayError> {
        let db = Self::open(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Opens the database as it is, without migrating it: a backup taken before an upgrade
    /// must copy the old schema, not the one the new binary would make of it.
    pub async fn open(url: &str) -> Result<Self, GatewayError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| {
            GatewayError::Config(format!(
                "database URL must start with sqlite:// or postgres://, not {:?}",
                url.split(':').next().unwrap_or("")
            ))
        })?;
        let url = match backend {
            // Create the file on first start.
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One of them is the webhook writer's for good (`crate::ingest`).
                Backend::Sqlite => 5,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // FULL: a commit is on disk (fsync of the WAL) before it returns, so
                        // an acknowledged webhook survives a power cut, not only a crash.
                        // Its cost is paid once per batch (see `crate::ingest`).
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        }
    }

    /// The newest schema version this binary knows.
    pub fn known_schema(backend: Backend) -> i64 {
        Self::migrator(backend)
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// The schema version the database is at: its newest applied migration (0 when new).
    pub async fn schema_version(&self) -> Result<i64, GatewayError> {
        let exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let (tables,): (i64,) = sqlx::query_as(exists).fetch_one(&self.pool).await?;
        if tables == 0 {
            return Ok(0);
        }
        let (version,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// Brings the schema forward to this binary's. Migrations only go forward, so a
    /// database a newer gateway has migrated is refused, not run against a schema this
    /// binary does not know.
    pub async fn migrate(&self) -> Result<(), GatewayError> {
        let found = self.schema_version().await?;
        let known = Self::known_schema(self.backend);
        if found > known {
            return Err(GatewayError::Config(format!(
                "the database is at schema version {found}, written by a newer klarna-gateway; this one ({}) knows versions up to {known}. Run the newer version, or restore the backup taken before the upgrade (docs/operations.md)",
                env!("CARGO_PKG_VERSION")
            )));
        }
        Self::migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// A transaction that will write. On SQLite it takes the write lock at once, so two
    /// writers queue instead of failing to upgrade their read locks.
    pub async fn begin_write(&self) -> Result<Tx, GatewayError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// `FOR UPDATE` where rows can be locked (PostgreSQL); SQLite's write transaction
    /// already excludes every other writer.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// A connection taken out of the pool for good, for a task that writes all the time
    /// (the webhook writer, [`crate::ingest`]): no acquire and no health check per batch.
    /// Its owner closes it after an error, so a broken one is not reused.
    pub async fn dedicated(&self) -> Result<PoolConnection<Any>, GatewayError> {
        Ok(self.pool.acquire().await?)
    }

    /// Copies what the WAL holds into the database as far as readers allow, without
    /// waiting for them or blocking the writer (SQLite; nothing to do on PostgreSQL).
    pub async fn checkpoint(&self) -> Result<(), GatewayError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), GatewayError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest migration that was allowed to remove something (0003 replaced a table).
    const LAST_THAT_REMOVED: i64 = 5;

    /// Instances are upgraded one at a time, so the previous version runs on the new
    /// schema for a while: a migration may add, never drop or rename (docs/operations.md).
    #[test]
    fn migrations_after_version_5_only_add() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for m in Db::migrator(backend).iter() {
                let sql = m.sql.to_uppercase();
                let removes = ["DROP ", "RENAME ", "TRUNCATE ", "DELETE FROM "]
                    .into_iter()
                    .find(|word| sql.contains(word));
                assert!(
                    m.version <= LAST_THAT_REMOVED || removes.is_none(),
                    "{backend:?} migration {} ({}) uses {removes:?}: migrations only add",
                    m.version,
                    m.description
                );
            }
        }
    }

    #[tokio::test]
    async fn a_database_a_newer_gateway_migrated_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
        let db = Db::connect(&url).await.expect("new database");
        let known = Db::known_schema(Backend::Sqlite);
        assert!(known >= 5);
        assert_eq!(db.schema_version().await.expect("version"), known);
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, 'from a later release', TRUE, X'00', 1)",
        )
        .bind(known + 1)
        .execute(&db.pool)
        .await
        .expect("a later migration");
        db.pool.close().await;

        let refused = Db::connect(&url)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let message = refused.expect_err("a newer schema is refused");
        assert!(
            message.contains(&format!("schema version {}", known + 1))
                && message.contains(&format!("knows versions up to {known}")),
            "{message}"
        );
        let db = Db::open(&url).await.expect("open as it is");
        assert_eq!(db.schema_version().await.expect("version"), known + 1);
    }
}
