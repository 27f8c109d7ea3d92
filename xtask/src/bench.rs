//! `cargo xtask bench [NAME]`: the benchmarks whose numbers the project reports.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{Result, cargo, step, tools_dir};

const BENCHES: &[&str] = &["mapping", "client", "gateway", "webhooks", "widget"];

pub fn run(args: &[String]) -> Result {
    let wanted: Vec<&str> = if args.is_empty() {
        BENCHES.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for name in wanted {
        match name {
            "mapping" => step(
                "bench mapping (criterion: map_order on 50 and 1000 lines)",
                cargo().args(["bench", "-p", "klarna-types", "--bench", "mapping"]),
            )?,
            "client" => step(
                "bench client (create-session against the sandbox: req/s, p50, p99)",
                cargo().args(["bench", "-p", "klarna-client", "--bench", "client"]),
            )?,
            "gateway" => step(
                "bench gateway (session overhead, authorize throughput; SQLite and PostgreSQL)",
                cargo().args(["bench", "-p", "klarna-gateway", "--bench", "gateway"]),
            )?,
            "webhooks" => step(
                "bench webhooks (signed ingest: gateway on SQLite and PostgreSQL vs a Python werkzeug baseline)",
                cargo()
                    .args(["bench", "-p", "klarna-gateway", "--bench", "webhooks"])
                    .env("WEBHOOK_BASELINE_PYTHON", baseline_python()?),
            )?,
            "widget" => widget()?,
            other => {
                return Err(format!(
                    "unknown benchmark {other:?}; known: {}",
                    BENCHES.join(", ")
                ));
            }
        }
    }
    Ok(())
}

fn has_werkzeug(python: &std::path::Path) -> bool {
    Command::new(python)
        .args(["-c", "import werkzeug"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A Python that has werkzeug for the baseline: the system's, or a virtualenv under the
/// tools directory with werkzeug from PyPI.
fn baseline_python() -> Result<PathBuf> {
    let system = PathBuf::from("python3");
    if has_werkzeug(&system) {
        return Ok(system);
    }
    let venv = tools_dir().join("bench-venv");
    let python = venv.join("bin").join("python3");
    if !has_werkzeug(&python) {
        step(
            "create a virtualenv for the Python baseline",
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
        )
        .map_err(|e| format!("{e} (install Python 3 with venv: apt-get install python3-venv)"))?;
        step(
            "install werkzeug from PyPI",
            Command::new(&python).args(["-m", "pip", "install", "--quiet", "werkzeug>=3,<4"]),
        )?;
    }
    Ok(python)
}

/// The widget's size (raw, gzip, brotli; against the budget) and its time to ready in
/// headless Chromium against the sandbox with 100 ms on the script and the session.
fn widget() -> Result {
    let bundle = crate::bundle::build()?;
    crate::bundle::report(&bundle);
    println!("  {}", crate::bundle::budget(&bundle));
    crate::wasm_size::report(&crate::bundle::cargo_wasm())?;
    crate::setup::run(crate::setup::Needs {
        bundle: false,
        browser: true,
        api: false,
    })?;
    step(
        "bench widget time-to-ready (headless Chromium, sandbox latency 100 ms)",
        cargo()
            .args(["bench", "-p", "klarna-widget", "--bench", "ready"])
            .env("KLARNA_WIDGET_DIST", &bundle.dir)
            .env("CHROMEDRIVER", "chromedriver")
            .env("CHROMIUM", crate::setup::chromium().unwrap_or("chromium")),
    )
}
