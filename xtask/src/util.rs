//! Paths, process helpers and timing shared by the xtask commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (xtask lives one level below it).
///
/// Read from the environment `cargo run` sets, not from `env!` alone: with one target
/// directory shared by several checkouts, cargo may reuse an xtask binary built in another
/// checkout, and a compile-time path would then send every command to that checkout.
pub fn root() -> PathBuf {
    root_of(std::env::var_os("CARGO_MANIFEST_DIR"))
}

fn root_of(runtime_manifest_dir: Option<std::ffi::OsString>) -> PathBuf {
    let manifest_dir = runtime_manifest_dir
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        _ => root().join("target"),
    }
}

/// Where xtask keeps tools it installs itself (wasm-opt from npm).
pub fn tools_dir() -> PathBuf {
    target_dir().join("xtask-tools")
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command to completion, failing with its description when it fails.
pub fn step(what: &str, cmd: &mut Command) -> Result {
    let started = Instant::now();
    eprintln!("\n==> {what}");
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    eprintln!("    ({what}: {:.1} s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// The first line a tool prints for `--version`, if it runs at all.
pub fn version_of(program: &str) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    })
}

/// The version of `package` that Cargo.lock pins.
pub fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("Cargo.lock does not pin {package}"))?
        + needle.len();
    let end = lock[start..]
        .find('"')
        .ok_or_else(|| format!("Cargo.lock entry for {package} is malformed"))?;
    Ok(lock[start..start + end].to_owned())
}

/// Prepends directories to PATH for the child processes of this xtask.
pub fn path_with(dirs: &[PathBuf]) -> std::ffi::OsString {
    let mut paths: Vec<PathBuf> = dirs.to_vec();
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_checkout_cargo_runs_in_not_the_one_xtask_was_built_in() {
        assert_eq!(
            root_of(Some("/elsewhere/clone/xtask".into())),
            PathBuf::from("/elsewhere/clone")
        );
        assert_eq!(
            root_of(None),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
        );
    }
}
