//! `cargo xtask test`: everything, in the order that fails fastest.

use std::process::Command;

use crate::bundle;
use crate::setup::{self, Needs};
use crate::util::{Result, cargo, step};

pub fn run_all() -> Result {
    setup::run(Needs::all())?;
    step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "cargo clippy (native)",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "cargo clippy (widget, wasm32)",
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
    step("cargo test (native)", cargo().args(["test", "--workspace"]))?;
    step(
        "cargo build (klarna-types for wasm32)",
        cargo().args([
            "build",
            "-p",
            "klarna-types",
            "--target",
            "wasm32-unknown-unknown",
        ]),
    )?;
    let chromium = setup::chromium().unwrap_or("chromium");
    step(
        "widget browser tests (wasm-bindgen-test, headless Chromium)",
        cargo()
            .args([
                "test",
                "-p",
                "klarna-widget",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .env("CHROMEDRIVER", "chromedriver")
            .env("WASM_BINDGEN_TEST_TIMEOUT", "60"),
    )?;
    let bundle = bundle::build()?;
    bundle::report(&bundle);
    step(
        "end-to-end browser tests (WebDriver, headless Chromium)",
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
    addon_checks()
}

pub fn run() -> Result {
    let started = std::time::Instant::now();
    let result = run_all();
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
            .arg("odoo/payment_klarna_stock"),
    )
}
