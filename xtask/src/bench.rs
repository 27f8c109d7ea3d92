//! `cargo xtask bench [NAME]`: the benchmarks whose numbers the project reports.

use crate::util::{Result, cargo, step};

const BENCHES: &[&str] = &["mapping", "client", "gateway"];

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
