//! `cargo xtask setup`: installs what is missing, and only that, from the registries.
//! Nothing is downloaded from anywhere else: Trunk runs offline with the wasm-bindgen-cli
//! installed here, and wasm-opt comes from npm's `binaryen` package when npm exists.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{self, Result, cargo, step, version_of};

pub const TRUNK_VERSION: &str = "0.21.14";
/// `wasm-pack test --headless --chrome` runs the widget's browser tests; it finds the
/// wasm-bindgen-cli installed here (the version the lock file pins) and Debian's
/// chromedriver on the PATH, so it downloads nothing.
pub const WASM_PACK_VERSION: &str = "0.15.1";
/// binaryen from npm (a JS/wasm build). Debian's binaryen (wasm-opt 108) miscompiles
/// wasm-bindgen 0.2.130 output, so it is never used.
pub const BINARYEN_VERSION: &str = "132.0.0";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// Trunk, wasm-bindgen-cli, the wasm target (and wasm-opt if npm is there).
    pub bundle: bool,
    /// Chromium and chromedriver for the browser tests.
    pub browser: bool,
    /// Schemathesis, for the gateway's OpenAPI test.
    pub api: bool,
}

impl Needs {
    pub fn all() -> Self {
        Self {
            bundle: true,
            browser: true,
            api: true,
        }
    }
}

pub fn run(needs: Needs) -> Result {
    if needs.bundle {
        wasm_target()?;
        trunk()?;
        wasm_bindgen()?;
        wasm_opt();
    }
    if needs.browser {
        browser()?;
        wasm_pack()?;
    }
    if needs.api {
        schemathesis()?;
    }
    Ok(())
}

/// Schemathesis from PyPI: the gateway's OpenAPI test (`crates/gateway/tests/openapi.rs`)
/// runs it against a running gateway and its `/openapi.json`.
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Its command, in a virtualenv of its own under the tools directory.
pub fn schemathesis_path() -> PathBuf {
    util::tools_dir()
        .join("schemathesis-venv")
        .join("bin")
        .join("st")
}

fn schemathesis() -> Result {
    let st = schemathesis_path();
    let installed = Command::new(&st)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(SCHEMATHESIS_VERSION));
    if installed {
        return Ok(());
    }
    let venv = util::tools_dir().join("schemathesis-venv");
    step(
        "create a virtualenv for Schemathesis",
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
    )
    .map_err(|e| format!("{e} (install Python 3 with venv: apt-get install python3-venv)"))?;
    step(
        &format!("install schemathesis {SCHEMATHESIS_VERSION} from PyPI"),
        Command::new(venv.join("bin").join("python3")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
        ]),
    )
}

fn wasm_target() -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET)
        });
    match installed {
        Ok(true) => Ok(()),
        Ok(false) => step(
            "rustup target add wasm32-unknown-unknown",
            Command::new("rustup").args(["target", "add", WASM_TARGET]),
        ),
        Err(_) => Err(format!(
            "rustup is not available: install the {WASM_TARGET} target for your Rust toolchain"
        )),
    }
}

/// `cargo install` of a tool we only run: LTO off and many codegen units halve its build
/// time, and it builds in its own target directory, not the project's.
fn cargo_install(flag: &str, krate: &str, version: &str) -> Result {
    let spec = format!("{krate}@{version}");
    step(
        &format!("cargo install {spec}"),
        cargo()
            .args(["install", flag, &spec])
            .env("CARGO_PROFILE_RELEASE_LTO", "off")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            .env_remove("CARGO_TARGET_DIR"),
    )
}

fn trunk() -> Result {
    if version_of("trunk").as_deref() == Some(&format!("trunk {TRUNK_VERSION}")) {
        return Ok(());
    }
    // Trunk 0.22 needs a newer rustc; its own lock file builds here.
    cargo_install("--locked", "trunk", TRUNK_VERSION)
}

fn wasm_bindgen() -> Result {
    let pinned = util::locked_version("wasm-bindgen")?;
    if version_of("wasm-bindgen").as_deref() == Some(&format!("wasm-bindgen {pinned}"))
        && version_of("wasm-bindgen-test-runner").is_some()
    {
        return Ok(());
    }
    // Not --locked: its lock file wants a webpki-roots version the registry lacks.
    cargo_install("--force", "wasm-bindgen-cli", &pinned)
}

fn wasm_pack() -> Result {
    if version_of("wasm-pack").as_deref() == Some(&format!("wasm-pack {WASM_PACK_VERSION}")) {
        return Ok(());
    }
    cargo_install("--locked", "wasm-pack", WASM_PACK_VERSION)
}

/// terser from npm minifies wasm-bindgen's JS glue (Trunk's own minifier cannot parse it).
pub const TERSER_VERSION: &str = "5.51.4";

/// The terser xtask installed, if any.
pub fn terser_path() -> Option<PathBuf> {
    let path = util::tools_dir().join("node_modules/.bin/terser");
    let version = version_of(path.to_str()?)?;
    version.contains(TERSER_VERSION).then_some(path)
}

/// The wasm-opt binary xtask installed, if any.
pub fn wasm_opt_path() -> Option<PathBuf> {
    let path = util::tools_dir().join("node_modules/.bin/wasm-opt");
    let version = version_of(path.to_str()?)?;
    version
        .contains(BINARYEN_VERSION.split('.').next()?)
        .then_some(path)
}

/// wasm-opt is optional: without npm the bundle is built without it (and is larger).
fn wasm_opt() {
    if terser_path().is_none() && version_of("npm").is_some() {
        let dir = util::tools_dir();
        let _ = std::fs::create_dir_all(&dir);
        if let Err(e) = step(
            &format!("npm install terser@{TERSER_VERSION}"),
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg(format!("terser@{TERSER_VERSION}")),
        ) {
            eprintln!("note: {e}; the widget's JS glue is not minified");
        }
    }
    if wasm_opt_path().is_some() {
        return;
    }
    if version_of("npm").is_none() {
        eprintln!(
            "note: npm is not installed, so wasm-opt (npm binaryen@{BINARYEN_VERSION}) is skipped; \
             the widget's wasm stays about 30 % larger"
        );
        return;
    }
    let dir = util::tools_dir();
    let _ = std::fs::create_dir_all(&dir);
    if let Err(e) = step(
        &format!("npm install binaryen@{BINARYEN_VERSION}"),
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("binaryen@{BINARYEN_VERSION}")),
    ) {
        eprintln!("note: {e}; the bundle is built without wasm-opt");
    }
}

pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|p| version_of(p).is_some())
}

/// The tools the tests of `deploy/` run (systemd-analyze comes with systemd): nginx, whose
/// `nginx -t` and whose header rules the site file is checked against, and promtool, which
/// checks and unit-tests the alert rules. Each with its Debian package.
const DEPLOY_TOOLS: [(&str, &str); 2] = [("nginx", "nginx-light"), ("promtool", "prometheus")];

/// Chromium and ChromeDriver for the browser tests, and the deployment tests' tools, from
/// Debian.
fn browser() -> Result {
    let mut missing = Vec::new();
    if chromium().is_none() {
        missing.push("chromium");
    }
    if version_of("chromedriver").is_none() {
        missing.push("chromium-driver");
    }
    // nginx and promtool print no version for `--version` (or not on standard output):
    // found on the PATH is enough.
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .chain(["/usr/sbin".into()])
            .any(|dir| dir.join(name).is_file())
    };
    let mut tools = Vec::new();
    for (program, package) in DEPLOY_TOOLS {
        if !on_path(program) {
            tools.push(package);
        }
    }
    missing.extend(tools.iter().copied());
    if missing.is_empty() {
        return Ok(());
    }
    if !util::is_root() {
        if missing == tools {
            eprintln!(
                "note: {} missing (`sudo apt-get install {}`): the tests of deploy/ that \
                 need them are skipped outside CI",
                tools.join(", "),
                tools.join(" ")
            );
            return Ok(());
        }
        return Err(format!(
            "{} missing. On Debian install them with `sudo apt-get install {}`, then run \
             this again.",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    step(
        "apt-get update",
        Command::new("apt-get").args(["update", "-q"]),
    )?;
    step(
        &format!("apt-get install {}", missing.join(" ")),
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
