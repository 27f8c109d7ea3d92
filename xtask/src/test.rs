//! `cargo xtask test`: everything, in the order that fails fastest.
//!
//! PostgreSQL is probed once up front ([`Postgres::decide`]); the suites that run on the
//! databases get the decision in `GATEWAY_TEST_PG`, and the closing summary says which
//! steps ran on which backend. Under CI (`CI` set) a missing PostgreSQL fails at once.

use std::fmt::Write as _;
use std::process::Command;

use crate::bundle;
use crate::modgraph;
use crate::postgres::{self, Postgres};
use crate::setup::{self, Needs};
use crate::util::{Result, cargo, step};

/// The suites that run on SQLite and PostgreSQL, for the summary.
const DATABASE_SUITES: &str = "the gateway's integration tests (crates/gateway/tests) and the end-to-end lifecycle (tests/e2e.rs)";

/// A step that ran, for the summary.
struct Ran {
    what: &'static str,
    passed: bool,
    databases: bool,
}

/// One `cargo xtask test`: the PostgreSQL decision and the steps so far.
struct Run {
    postgres: Postgres,
    ran: Vec<Ran>,
}

impl Run {
    /// Runs a command as a step; `databases` when it holds suites that run on both.
    fn step(&mut self, what: &'static str, databases: bool, cmd: &mut Command) -> Result {
        if databases {
            cmd.env(postgres::DECISION, self.postgres.env_value());
        }
        self.record(what, databases, step(what, cmd))
    }

    fn record(&mut self, what: &'static str, databases: bool, result: Result) -> Result {
        self.ran.push(Ran {
            what,
            passed: result.is_ok(),
            databases,
        });
        result
    }

    fn summary(&self, result: &Result) -> String {
        let width = self.ran.iter().map(|r| r.what.len()).max().unwrap_or(0);
        let mut out = format!(
            "\n{:width$}  {:7}  {:6}  PostgreSQL\n",
            "step", "result", "SQLite"
        );
        for r in &self.ran {
            let (sqlite, pg) = if r.databases {
                ("ran", self.postgres.column())
            } else {
                ("-", "-")
            };
            let outcome = if r.passed { "passed" } else { "FAILED" };
            let _ = writeln!(out, "{:width$}  {outcome:7}  {sqlite:6}  {pg}", r.what);
        }
        if result.is_err() {
            out.push_str("(the steps after a failure did not run)\n");
        }
        let _ = write!(
            out,
            "on both databases: {DATABASE_SUITES}\n{}",
            self.postgres.describe()
        );
        out
    }
}

fn run_all(run: &mut Run) -> Result {
    eprintln!("\n==> {}", run.postgres.describe());
    if std::env::var_os("CI").is_some()
        && let Postgres::Skipped { why } = &run.postgres
    {
        return run.record(
            "PostgreSQL (required under CI)",
            true,
            Err(format!("CI requires PostgreSQL: {why}")),
        );
    }
    setup::run(Needs::all())?;
    run.step(
        "cargo fmt --check",
        false,
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    eprintln!("\n==> module graph: no import circle");
    let graph = modgraph::run(&[]);
    run.record("module graph (cargo xtask modgraph)", false, graph)?;
    run.step(
        "cargo clippy (native)",
        false,
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run.step(
        "cargo clippy (widget, wasm32)",
        false,
        cargo().args([
            "clippy",
            "-p",
            "klarna-widget",
            "--target",
            "wasm32-unknown-unknown",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run.step(
        "cargo test (native)",
        true,
        cargo()
            .args(["test", "--workspace"])
            .env("SCHEMATHESIS", setup::schemathesis_path()),
    )?;
    // Without `--bench` each benchmark runs a few iterations: it keeps the benchmarks
    // working (servers start, every answer is what it should be); their figures mean
    // nothing. (The widget's time-to-ready bench needs the bundle: it runs after the
    // bundle is built, below.)
    run.step(
        "benchmarks, quick mode (cargo test --benches)",
        true,
        cargo().args([
            "test",
            "-p",
            "klarna-types",
            "-p",
            "klarna-client",
            "-p",
            "klarna-gateway",
            "--benches",
        ]),
    )?;
    run.step(
        "cargo build (klarna-types for wasm32)",
        false,
        cargo().args([
            "build",
            "-p",
            "klarna-types",
            "--target",
            "wasm32-unknown-unknown",
        ]),
    )?;
    let chromium = setup::chromium().unwrap_or("chromium");
    // As the widget's own developers run them (docs/embedding.md): wasm-pack finds the
    // pinned wasm-bindgen-test-runner and Debian's chromedriver on the PATH.
    run.step(
        "widget browser tests (wasm-pack test --headless --chrome)",
        false,
        Command::new("wasm-pack")
            .current_dir(crate::util::root())
            .args(["test", "--headless", "--chrome"])
            .env("WASM_BINDGEN_TEST_TIMEOUT", "60"),
    )?;
    let bundle = bundle::build()?;
    bundle::report(&bundle);
    // Reported, not enforced: `cargo xtask bench widget` is where the size is judged.
    println!("  {}", bundle::budget(&bundle));
    run.step(
        "end-to-end browser tests (WebDriver, headless Chromium)",
        true,
        cargo()
            .args([
                "test",
                "-p",
                "klarna-widget",
                "--test",
                "e2e",
                "--test",
                "sdk_standin",
                "--",
                "--ignored",
                "--test-threads=1",
            ])
            .env("KLARNA_WIDGET_DIST", &bundle.dir)
            .env("CHROMEDRIVER", "chromedriver")
            .env("CHROMIUM", chromium),
    )?;
    run.step(
        "widget time-to-ready bench, quick mode (headless Chromium)",
        false,
        cargo()
            .args(["test", "-p", "klarna-widget", "--bench", "ready"])
            .env("KLARNA_WIDGET_DIST", &bundle.dir)
            .env("CHROMEDRIVER", "chromedriver")
            .env("CHROMIUM", chromium),
    )?;
    let addon = addon_checks();
    run.record("odoo addon static checks", false, addon)
}

pub fn run() -> Result {
    let started = std::time::Instant::now();
    let mut run = Run {
        postgres: Postgres::decide(),
        ran: Vec::new(),
    };
    let result = run_all(&mut run);
    eprintln!("{}", run.summary(&result));
    eprintln!(
        "\ncargo xtask test: {} in {:.0} s",
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}

/// The Odoo addon cannot run here (no Odoo), but every Python file must compile and every
/// XML file must parse.
fn addon_checks() -> Result {
    step(
        "odoo addon static checks",
        Command::new("python3")
            .current_dir(crate::util::root())
            .arg("odoo/check_addon.py")
            .arg("odoo/payment_klarna")
            .arg("odoo/payment_klarna_stock")
            .arg("odoo/payment_klarna_website_sale"),
    )
}
