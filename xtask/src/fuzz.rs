//! `cargo xtask fuzz [TARGET…] [--runs N]`: libFuzzer, through cargo-fuzz on the nightly
//! toolchain, over the parsers an outsider reaches (the crate is `fuzz/`). Not a step of
//! `test`: ten million runs of each target take minutes.
//!
//! Each target starts from its committed seeds (`fuzz/seeds/<target>`, read only) and a
//! working corpus kept under the fuzz build's target directory, so the checkout only ever
//! gains a crash reproducer (`fuzz/artifacts/`, ignored by git). The build goes to
//! `$KLARNA_FUZZ_TARGET_DIR`, else `<target dir>/fuzz`: its instrumented nightly build
//! never mixes with the ordinary one.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{Result, cargo, root, step, target_dir, version_of};

/// The targets, in the order they run (one file each in `fuzz/fuzz_targets/`).
pub const TARGETS: &[&str] = &[
    "signature_header",
    "webhook_body",
    "admin_signature",
    "session_request",
];

/// libFuzzer's `-runs` when none is given.
const DEFAULT_RUNS: u64 = 10_000_000;

/// What libFuzzer said at the end of one target's run.
struct Outcome {
    target: &'static str,
    /// `Done N runs in S second(s)`.
    done: String,
    /// The `exec/s` of the final `DONE` status line.
    execs_per_sec: Option<String>,
}

pub fn run(args: &[String]) -> Result {
    let (targets, runs) = parse_args(args)?;
    nightly()?;
    cargo_fuzz()?;
    let build_dir = fuzz_target_dir();
    let mut outcomes = Vec::new();
    for target in targets {
        let corpus = build_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root())
            .args(["+nightly", "fuzz", "run", target])
            // The first corpus directory is the one libFuzzer writes to.
            .arg(&corpus)
            .arg(root().join("fuzz").join("seeds").join(target))
            .arg("--")
            .arg(format!("-runs={runs}"))
            .env("CARGO_TARGET_DIR", &build_dir)
            // `cargo xtask` runs under the stable cargo; let rustup pick nightly's.
            .env_remove("CARGO")
            .env_remove("RUSTUP_TOOLCHAIN");
        outcomes.push(fuzz_one(target, runs, &mut cmd)?);
    }
    println!("\nfuzz: no target panicked");
    for o in &outcomes {
        println!(
            "  {:<17} {} ({} exec/s)",
            o.target,
            o.done,
            o.execs_per_sec.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(Vec<&'static str>, u64)> {
    let mut targets = Vec::new();
    let mut runs = DEFAULT_RUNS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let runs_value = match arg.strip_prefix("--runs") {
            Some("") => Some(
                args.next()
                    .ok_or("--runs needs a number of executions")?
                    .as_str(),
            ),
            Some(eq) => eq.strip_prefix('='),
            None => None,
        };
        if let Some(value) = runs_value {
            runs = value
                .replace('_', "")
                .parse()
                .map_err(|_| format!("--runs: {value:?} is not a number"))?;
        } else if let Some(known) = TARGETS.iter().find(|t| **t == arg) {
            targets.push(*known);
        } else {
            return Err(format!(
                "unknown fuzz target {arg:?}; known: {}",
                TARGETS.join(", ")
            ));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok((targets, runs))
}

fn fuzz_target_dir() -> PathBuf {
    match std::env::var_os("KLARNA_FUZZ_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => target_dir().join("fuzz"),
    }
}

/// cargo-fuzz builds with nightly's sanitizer flags.
fn nightly() -> Result {
    let listed = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map_err(|e| format!("rustup is not available ({e}): cargo-fuzz needs a nightly Rust"))?;
    if String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l.starts_with("nightly"))
    {
        return Ok(());
    }
    step(
        "rustup toolchain install nightly",
        Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]),
    )
}

fn cargo_fuzz() -> Result {
    if version_of("cargo-fuzz").is_some() {
        return Ok(());
    }
    step(
        "cargo install cargo-fuzz",
        cargo()
            .args(["install", "--locked", "cargo-fuzz"])
            .env_remove("CARGO_TARGET_DIR"),
    )
}

/// Runs one target, echoing what it prints and keeping libFuzzer's closing lines.
fn fuzz_one(target: &'static str, runs: u64, cmd: &mut Command) -> Result<Outcome> {
    let what = format!("fuzz {target} ({runs} runs)");
    let started = Instant::now();
    eprintln!("\n==> {what}");
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start cargo: {e}"))?;
    let mut done = None;
    let mut execs_per_sec = None;
    if let Some(stderr) = child.stderr.take() {
        // libFuzzer may print the bytes of an input: read lines as bytes.
        for line in BufReader::new(stderr).split(b'\n') {
            let line = line.map_err(|e| format!("{what}: reading its output: {e}"))?;
            let line = String::from_utf8_lossy(&line);
            eprintln!("{line}");
            if line.starts_with("Done ") {
                done = Some(line.trim().to_owned());
            } else if line.contains("DONE ") {
                execs_per_sec = status_field(&line, "exec/s:");
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("{what}: waiting for it: {e}"))?;
    eprintln!("    ({what}: {:.1} s)", started.elapsed().as_secs_f64());
    if !status.success() {
        return Err(format!(
            "{what} failed ({status}); the input is under fuzz/artifacts/{target}/"
        ));
    }
    Ok(Outcome {
        target,
        done: done.ok_or_else(|| format!("{what}: libFuzzer printed no \"Done\" line"))?,
        execs_per_sec,
    })
}

/// The value after `name` in a libFuzzer status line (`… exec/s: 41234 rss: …`).
fn status_field(line: &str, name: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == name)?;
    words.next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_target_ten_million_times_unless_told() {
        assert_eq!(parse_args(&[]), Ok((TARGETS.to_vec(), 10_000_000)));
        assert_eq!(
            parse_args(&args(&["webhook_body", "--runs", "1_000"])),
            Ok((vec!["webhook_body"], 1_000))
        );
        assert_eq!(
            parse_args(&args(&["--runs=5", "session_request", "admin_signature"])),
            Ok((vec!["session_request", "admin_signature"], 5))
        );
        assert!(parse_args(&args(&["nope"])).is_err());
        assert!(parse_args(&args(&["--runs"])).is_err());
        assert!(parse_args(&args(&["--runs", "many"])).is_err());
    }

    #[test]
    fn the_rate_is_read_from_the_final_status_line() {
        let line =
            "#10000000\tDONE   cov: 1207 ft: 2686 corp: 348/61Kb lim: 298 exec/s: 41234 rss: 127Mb";
        assert_eq!(status_field(line, "exec/s:").as_deref(), Some("41234"));
        assert_eq!(status_field("Done 5 runs in 0 second(s)", "exec/s:"), None);
    }
}
