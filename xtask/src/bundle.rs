//! Builds the widget bundle with Trunk (offline), runs wasm-opt over it when a registry
//! binaryen is installed, and measures it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::setup::{self, Needs};
use crate::util::{self, Result, cargo, step};

pub struct Bundle {
    pub dir: PathBuf,
    pub optimized: bool,
}

pub fn dist_dir() -> PathBuf {
    util::target_dir().join("widget-dist")
}

pub fn build() -> Result<Bundle> {
    setup::run(Needs {
        bundle: true,
        browser: false,
    })?;
    // Trunk runs cargo offline; the registry must already hold every crate.
    step("cargo fetch", cargo().args(["fetch", "--quiet"]))?;
    let dir = dist_dir();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
            PathBuf::from,
        )
        .join("bin");
    step(
        "trunk build --release",
        Command::new("trunk")
            .current_dir(util::root())
            .args(["build", "--release", "--offline", "--dist"])
            .arg(&dir)
            .env("TRUNK_SKIP_VERSION_CHECK", "true")
            .env("CARGO_TARGET_DIR", util::target_dir())
            .env("PATH", util::path_with(&[cargo_bin])),
    )?;
    let optimized = match setup::wasm_opt_path() {
        Some(wasm_opt) => {
            let wasm = dir.join("klarna-widget_bg.wasm");
            let out = dir.join("klarna-widget_bg.opt.wasm");
            step(
                "wasm-opt -Oz",
                Command::new(&wasm_opt)
                    .arg(&wasm)
                    .args([
                        "-Oz",
                        "--enable-bulk-memory",
                        "--enable-nontrapping-float-to-int",
                        "--enable-sign-ext",
                        "--enable-mutable-globals",
                        "--enable-reference-types",
                        "--enable-multivalue",
                        "--strip-debug",
                        "--strip-producers",
                        "-o",
                    ])
                    .arg(&out),
            )?;
            std::fs::rename(&out, &wasm).map_err(|e| format!("wasm-opt output: {e}"))?;
            true
        }
        None => false,
    };
    Ok(Bundle { dir, optimized })
}

fn gzip_size(path: &PathBuf) -> Option<usize> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout.len())
}

/// Prints each file of the bundle, raw and gzip, and the total.
pub fn report(bundle: &Bundle) {
    let files = ["klarna-widget_bg.wasm", "klarna-widget.js", "widget.css"];
    let (mut raw_total, mut gz_total) = (0, 0);
    println!(
        "\nwidget bundle in {} (wasm-opt: {}):",
        bundle.dir.display(),
        if bundle.optimized { "yes" } else { "no" }
    );
    for name in files {
        let path = bundle.dir.join(name);
        let raw = std::fs::metadata(&path).map_or(0, |m| m.len() as usize);
        let gz = gzip_size(&path).unwrap_or(0);
        raw_total += raw;
        gz_total += gz;
        println!(
            "  {name:<24} {:>8.1} KB raw {:>8.1} KB gzip",
            raw as f64 / 1024.0,
            gz as f64 / 1024.0
        );
    }
    println!(
        "  {:<24} {:>8.1} KB raw {:>8.1} KB gzip",
        "total",
        raw_total as f64 / 1024.0,
        gz_total as f64 / 1024.0
    );
}
