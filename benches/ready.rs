//! Time from mount to `klarna:ready` in headless Chromium, against the sandbox with 100 ms
//! of latency on both the SDK script and the Klarna session, so the two overlap only if
//! the widget starts them together. The widget marks `klarna:mount` and `klarna:ready`
//! (User Timing); the script's and the session's ends come from Resource Timing.
//!
//! `cargo xtask bench widget` builds the bundle and runs this with `KLARNA_WIDGET_DIST`.
//! Without `--bench` (`cargo xtask test`'s quick mode) it loads the page twice: the
//! measurement still has to work end to end, but its figures mean nothing.

// Native only (it drives a browser); the wasm build of the crate gets an empty main.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    bench::main();
}

#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/support/mod.rs"]
mod support;

#[cfg(not(target_arch = "wasm32"))]
mod bench {

    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::support::{browser, start_driver, wait_for};
    use klarna_gateway::{Config, Gateway, InitialSecrets};
    use klarna_sandbox::{FaultSpec, Sandbox, SandboxConfig};
    use serde_json::{Value, json};
    use tokio::net::TcpListener;

    const RUNS: usize = 15;
    const QUICK_RUNS: usize = 2;
    const LATENCY_MS: u64 = 100;

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn max(v: &[f64]) -> f64 {
        v.iter().copied().fold(f64::MIN, f64::max)
    }

    #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    pub async fn main() {
        if std::env::args().any(|a| a == "--list") {
            println!("ready: benchmark");
            return;
        }
        let runs = if std::env::args().any(|a| a == "--bench") {
            RUNS
        } else {
            println!("quick mode (no --bench): {QUICK_RUNS} page loads, figures not meaningful");
            QUICK_RUNS
        };
        let dist = PathBuf::from(
            std::env::var("KLARNA_WIDGET_DIST")
                .expect("KLARNA_WIDGET_DIST: run `cargo xtask bench widget`"),
        );
        let sandbox_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sandbox_url = format!("http://{}", sandbox_listener.local_addr().expect("addr"));
        let gateway_url = format!("http://{}", gateway_listener.local_addr().expect("addr"));
        let slow = FaultSpec {
            latency_ms: LATENCY_MS,
            ..FaultSpec::default()
        };
        let sandbox_config = SandboxConfig {
            storefront_dir: Some(dist),
            gateway_url: Some(gateway_url.clone()),
            faults: [
                ("sdk_script".to_owned(), slow.clone()),
                ("create_session".to_owned(), slow),
            ]
            .into_iter()
            .collect(),
            ..SandboxConfig::default()
        };
        let sandbox = Arc::new(Sandbox::new(sandbox_config.clone(), sandbox_url.clone()));
        tokio::spawn(klarna_sandbox::serve(
            sandbox_listener,
            sandbox,
            std::future::pending(),
        ));
        let data = tempfile::tempdir().expect("dir");
        let config = Config::sandbox(
            &format!("sqlite://{}", data.path().join("gateway.db").display()),
            data.path(),
            &sandbox_url,
        );
        let secrets = InitialSecrets {
            klarna_username: Some(sandbox_config.username.clone()),
            klarna_password: Some(sandbox_config.password.clone()),
            odoo_password: Some(sandbox_config.odoo_password.clone()),
            ..InitialSecrets::default()
        };
        let gateway = Arc::new(Gateway::new(config, secrets).await.expect("gateway"));
        let _running = klarna_gateway::start(gateway_listener, gateway.clone())
            .await
            .expect("gateway");

        let driver = start_driver().await;
        let profile = tempfile::tempdir().expect("profile");
        let client = browser(&driver, profile.path(), 1280).await;
        let url = format!("{sandbox_url}/shop/payment/S09001");
        let (mut ready, mut script, mut session, mut gap) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut started, mut ours, mut klarna_load) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..=runs {
            // A new Klarna session every time (the gateway reuses one for an unchanged cart).
            sqlx::query("DELETE FROM sessions")
                .execute(&gateway.db.pool)
                .await
                .expect("clear sessions");
            client.goto(&url).await.expect("page");
            wait_for(&client, ".kw[data-phase=ready]").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t: Value = client
                .execute(
                    "const mark = n => performance.getEntriesByName(n)[0].startTime;
                     const end = f => performance.getEntriesByType('resource').find(e => f(e.name)).responseEnd;
                     const mount = mark('klarna:mount');
                     return { ready: mark('klarna:ready') - mount,
                              started: mark('klarna:started') - mount,
                              load: mark('klarna:load') - mount,
                              script: end(n => n.includes('/kp/lib/v1/api.js')) - mount,
                              session: end(n => n.endsWith('/klarna/session')) - mount };",
                    vec![],
                )
                .await
                .expect("timings");
            let get = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
            if run == 0 {
                continue; // warm-up: the wasm compiled, connections open
            }
            ready.push(get("ready"));
            script.push(get("script"));
            session.push(get("session"));
            let slower = get("script").max(get("session"));
            gap.push(get("ready") - slower);
            started.push(get("started") - slower);
            // The widget's own time after the slower of the two: noticing both (started),
            // init, rendering the category containers, calling load(). The rest is Klarna's
            // load() itself (its iframe loading), which no embedding can shorten.
            ours.push(get("load") - slower);
            klarna_load.push(get("ready") - get("load"));
        }
        client.close().await.expect("close");
        println!(
            "\ntime to ready, {runs} page loads, {LATENCY_MS} ms latency on the SDK script and on the session (headless Chromium, loopback)"
        );
        println!(
            "  mount → klarna:ready          median {:7.1} ms   max {:7.1} ms",
            median(ready.clone()),
            max(&ready)
        );
        println!(
            "  mount → SDK script loaded     median {:7.1} ms   max {:7.1} ms",
            median(script.clone()),
            max(&script)
        );
        println!(
            "  mount → session answered      median {:7.1} ms   max {:7.1} ms",
            median(session.clone()),
            max(&session)
        );
        println!(
            "  ready after the slower of the two: median {:5.1} ms   max {:5.1} ms   (sum of both would be ≥ {} ms)",
            median(gap.clone()),
            max(&gap),
            2 * LATENCY_MS
        );
        println!(
            "    of which the widget's own work (both seen → init → containers → load() called): median {:4.1} ms   max {:4.1} ms",
            median(ours.clone()),
            max(&ours)
        );
        println!(
            "      (both seen: median {:4.1} ms after the slower one)",
            median(started.clone())
        );
        println!(
            "    and Klarna's load() (the SDK's iframe loading and answering): median {:4.1} ms   max {:4.1} ms",
            median(klarna_load.clone()),
            max(&klarna_load)
        );
        println!(
            "{}",
            json!({"ready_ms": ready, "script_ms": script, "session_ms": session, "gap_ms": gap, "own_ms": ours, "klarna_load_ms": klarna_load})
        );
    }
}
