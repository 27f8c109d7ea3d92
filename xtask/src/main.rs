//! `cargo xtask`: every project task beyond `cargo build`.
//!
//! - `setup`: install what is missing (wasm target, Trunk, wasm-bindgen-cli, Chromium,
//!   chromedriver, wasm-opt) from the package registries only, and nothing else
//! - `demo`: build the widget, start the sandbox and the gateway, serve the storefront
//! - `test`: fmt, clippy, every crate's tests, the browser tests, the end-to-end test
//! - `bundle`: build the widget bundle only
//! - `modgraph`: check that the gateway's and the sandbox's modules import no circle
//! - `fuzz`: libFuzzer over the gateway's parsers (nightly, cargo-fuzz; not part of `test`)

mod bench;
mod bundle;
mod demo;
mod fuzz;
mod modgraph;
mod postgres;
mod setup;
mod test;
mod util;
mod wasm_size;

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: cargo xtask <command>

commands:
  setup    install missing tools (wasm32 target, trunk, wasm-bindgen-cli, chromium,
           chromedriver, wasm-opt) from the registries
  demo     build the widget and run sandbox + gateway + storefront until Ctrl-C
           [--sandbox-port 7070] [--gateway-port 7080]
  test     run every check and test (fmt, clippy, unit, integration, browser, end-to-end)
  bundle   build the release widget bundle and print its size
  addon    build the widget bundle into odoo/payment_klarna/static/src/widget
  modgraph check that no module of the gateway or the sandbox reaches itself again
           through its imports (also a step of `test`) [src-dir …]
  bench    run the benchmarks: `bench mapping` (Odoo → Klarna mapping, criterion)
  fuzz     libFuzzer (cargo-fuzz, nightly) over the gateway's parsers, each target from
           its seeds in fuzz/seeds [signature_header|webhook_body|admin_signature|
           session_request …] [--runs 10000000]; not part of `test`"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(setup::Needs::all()),
        Some("demo") => demo::run(&args[1..]),
        Some("test") => test::run(),
        Some("bundle") => bundle::build().map(|b| bundle::report(&b)),
        Some("addon") => bundle::build().and_then(|b| bundle::into_addon(&b)),
        Some("bench") => bench::run(&args[1..]),
        Some("modgraph") => modgraph::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{}", usage())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}
