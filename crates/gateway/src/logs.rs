//! The gateway's log lines: JSON (one object a line, the request span's fields on each) or
//! text, to any writer — stderr in production, a buffer in the test that scans every line
//! for secrets.

use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the process's subscriber; `false` when one was installed already.
pub fn init<W>(format: LogFormat, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
            .is_ok(),
        LogFormat::Text => builder.try_init().is_ok(),
    }
}
