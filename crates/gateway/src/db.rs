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
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(GatewayError::Config(format!(
                "database URL must start with sqlite:// or postgres://, not {:?}",
                url.split(':').next().unwrap_or("")
            )));
        };
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
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run(&pool).await?;
        Ok(Self { pool, backend })
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
