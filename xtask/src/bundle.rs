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
        api: false,
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
                "wasm-opt -Os --converge",
                Command::new(&wasm_opt)
                    .arg(&wasm)
                    .args([
                        // Measured on this bundle: -Os --converge gzips ~1 KB smaller
                        // than -Oz (which is smaller raw, but compresses worse).
                        "-Os",
                        "--converge",
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
    if let Some(terser) = setup::terser_path() {
        // wasm-bindgen's JS glue, and the boot script (whose comments are for us, not for
        // every shopper's download).
        for name in ["klarna-widget", "klarna-boot"] {
            let js = dir.join(format!("{name}.js"));
            let out = dir.join(format!("{name}.min.js"));
            step(
                "terser (the widget's JavaScript)",
                Command::new(&terser)
                    .arg(&js)
                    .args(["--module", "--compress", "--mangle", "--ecma", "2020", "-o"])
                    .arg(&out),
            )?;
            std::fs::rename(&out, &js).map_err(|e| format!("terser output: {e}"))?;
        }
    }
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

fn brotli_size(path: &PathBuf) -> Option<usize> {
    let data = std::fs::read(path).ok()?;
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut data.as_slice(), &mut out, &params).ok()?;
    Some(out.len())
}

/// What the browser downloads for the widget: the module, its glue, its styles and the
/// boot script (the storefront's own page and CSS are not the widget's).
pub const FILES: [&str; 4] = [
    "klarna-widget_bg.wasm",
    "klarna-widget.js",
    "widget.css",
    "klarna-boot.js",
];

/// `(raw, gzip -9, brotli 11)` of each bundle file, and the total.
pub fn sizes(bundle: &Bundle) -> Vec<(&'static str, usize, usize, usize)> {
    let mut rows: Vec<_> = FILES
        .iter()
        .map(|name| {
            let path = bundle.dir.join(name);
            (
                *name,
                std::fs::metadata(&path).map_or(0, |m| m.len() as usize),
                gzip_size(&path).unwrap_or(0),
                brotli_size(&path).unwrap_or(0),
            )
        })
        .collect();
    let total = rows
        .iter()
        .fold((0, 0, 0), |(a, b, c), r| (a + r.1, b + r.2, c + r.3));
    rows.push(("total", total.0, total.1, total.2));
    rows
}

/// Prints each file of the bundle, raw, gzip and brotli, and the total.
pub fn report(bundle: &Bundle) {
    println!(
        "\nwidget bundle in {} (wasm-opt: {}):",
        bundle.dir.display(),
        if bundle.optimized { "yes" } else { "no" }
    );
    for (name, raw, gz, br) in sizes(bundle) {
        println!(
            "  {name:<24} {:>8.1} KB raw {:>8.1} KB gzip {:>8.1} KB brotli",
            raw as f64 / 1024.0,
            gz as f64 / 1024.0,
            br as f64 / 1024.0
        );
    }
}

/// The widget's size budget: wasm + JS glue + CSS + boot script, gzip.
pub const BUDGET_GZIP: usize = 130 * 1024;

/// A line saying whether the bundle is within [`BUDGET_GZIP`], and by how much.
pub fn budget(bundle: &Bundle) -> String {
    let total = sizes(bundle).last().map_or(0, |(_, _, gz, _)| *gz);
    let kb = |n: usize| n as f64 / 1024.0;
    if total <= BUDGET_GZIP {
        format!(
            "budget {:.1} KB gzip: within, {:.1} KB to spare",
            kb(BUDGET_GZIP),
            kb(BUDGET_GZIP - total)
        )
    } else {
        format!(
            "budget {:.1} KB gzip: OVER by {:.1} KB",
            kb(BUDGET_GZIP),
            kb(total - BUDGET_GZIP)
        )
    }
}

/// The module cargo built for the bundle, before wasm-bindgen and wasm-opt: the one that
/// still has its function names.
pub fn cargo_wasm() -> PathBuf {
    util::target_dir().join("wasm32-unknown-unknown/widget/klarna_widget.wasm")
}

/// Copies the bundle's files into the Odoo addon, where its inline form loads them.
pub fn into_addon(bundle: &Bundle) -> Result {
    let target = util::root().join("odoo/payment_klarna/static/src/widget");
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    for name in FILES {
        std::fs::copy(bundle.dir.join(name), target.join(name))
            .map_err(|e| format!("copying {name} into the addon: {e}"))?;
    }
    println!("widget bundle copied into {}", target.display());
    Ok(())
}
