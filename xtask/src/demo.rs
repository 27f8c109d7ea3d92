//! `cargo xtask demo`: the whole system on one machine, on SQLite — the sandbox (Klarna +
//! an Odoo stand-in that serves the storefront) and the gateway — until Ctrl-C.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::bundle;
use crate::util::{self, Result, cargo, step};

const SANDBOX_USER: &str = "sandbox-merchant";
const SANDBOX_PASSWORD: &str = "sandbox-password";
const ODOO_PASSWORD: &str = "admin";
const ODOO_SHARED_SECRET: &str = "sandbox-odoo-secret";
/// The demo's admin API token (a demo value, printed on purpose).
const ADMIN_TOKEN: &str = "sandbox-admin-token";
/// The demo's webhook signing key (sandbox only; the sandbox signs with it).
const WEBHOOK_KEY_ID: &str = "demo-key-1";
const WEBHOOK_KEY_SECRET: &str = "sandbox-webhook-secret-1";

fn port_arg(args: &[String], flag: &str, default: u16) -> Result<u16> {
    match args.iter().position(|a| a == flag) {
        Some(i) => args
            .get(i + 1)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{flag} needs a port number")),
        None => Ok(default),
    }
}

pub fn run(args: &[String]) -> Result {
    let sandbox_port = port_arg(args, "--sandbox-port", 7070)?;
    let gateway_port = port_arg(args, "--gateway-port", 7080)?;
    let started = Instant::now();
    let bundle = bundle::build()?;
    step(
        "cargo build (sandbox, gateway)",
        cargo().args(["build", "-p", "klarna-sandbox", "-p", "klarna-gateway"]),
    )?;
    eprintln!(
        "    (demo ready to start after {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let bin = util::target_dir().join("debug");
    let data_dir = util::root().join("data");
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;

    let storefront = format!("http://127.0.0.1:{sandbox_port}");
    let gateway_url = format!("http://127.0.0.1:{gateway_port}");
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    }
    let mut children = Vec::new();
    children.push((
        "klarna-sandbox",
        Command::new(bin.join("klarna-sandbox"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{sandbox_port}"))
            .arg("--storefront-dir")
            .arg(&bundle.dir)
            .arg("--gateway-url")
            .arg(&gateway_url)
            .arg("--webhook-url")
            .arg(format!("{gateway_url}/klarna/webhook"))
            .arg("--signing-key")
            .arg(format!("{WEBHOOK_KEY_ID}={WEBHOOK_KEY_SECRET}"))
            .arg("--webhook-time-scale")
            .arg("0.01")
            .env("SANDBOX_USERNAME", SANDBOX_USER)
            .env("SANDBOX_PASSWORD", SANDBOX_PASSWORD)
            .env("SANDBOX_ODOO_PASSWORD", ODOO_PASSWORD)
            .spawn()
            .map_err(|e| format!("cannot start klarna-sandbox: {e}"))?,
    ));
    let gateway = Command::new(bin.join("klarna-gateway"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{gateway_port}"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--klarna-url")
        .arg(&storefront)
        .arg("--odoo-url")
        .arg(&storefront)
        .arg("--allowed-origin")
        .arg(format!("{storefront},http://localhost:{sandbox_port}"))
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{}", gateway_port + 1))
        .arg("--log-format")
        .arg("text")
        .arg("--public-url")
        .arg(&gateway_url)
        .env("KLARNA_USERNAME", SANDBOX_USER)
        .env("KLARNA_PASSWORD", SANDBOX_PASSWORD)
        .env("ODOO_PASSWORD", ODOO_PASSWORD)
        .env("ODOO_SHARED_SECRET", ODOO_SHARED_SECRET)
        .env("GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env(
            "GATEWAY_WEBHOOK_SIGNING_KEYS",
            format!("{WEBHOOK_KEY_ID}={WEBHOOK_KEY_SECRET}"),
        )
        .spawn();
    match gateway {
        Ok(child) => children.push(("klarna-gateway", child)),
        Err(e) => {
            shutdown(&mut children);
            return Err(format!("cannot start klarna-gateway: {e}"));
        }
    }
    let ready = [sandbox_port, gateway_port]
        .iter()
        .all(|p| wait_for_port(*p, Duration::from_secs(15)));
    if !ready {
        shutdown(&mut children);
        return Err("the sandbox or the gateway did not start listening within 15 s".into());
    }
    println!(
        "\n  Demo shop:   {storefront}/shop\n  Pay one:     {storefront}/shop/payment/S09001  (add ?mode=modal for the modal)\n  Save Klarna: {storefront}/shop/payment/S09001?save=1  (\"Save my payment details\"; the payment's saved_token names it)\n  Charge it:   curl -H 'Authorization: Bearer {ADMIN_TOKEN}' -H 'Content-Type: application/json' -d '{{\"transaction_reference\": \"S09003-1\", \"order_reference\": \"S09003\"}}' {gateway_url}/admin/tokens/<saved_token>/charges\n  Messaging:   {storefront}/shop/product/900101 and {storefront}/shop/cart/S09001  (Klarna's price messaging; change the quantity)\n  Gateway:     {gateway_url}  (SQLite: {})\n  Admin API:   curl -H 'Authorization: Bearer {ADMIN_TOKEN}' {gateway_url}/admin/payments/S09001\n  Edit it:     curl -H 'Content-Type: application/json' -d '{{\"remove_lines\": [900103]}}' {storefront}/_sandbox/odoo/orders/S09001/edit\n               (once paid: the cookbook is out of stock, and Klarna's authorization follows the order)\n  Metrics:     http://127.0.0.1:{}/metrics\n  Webhook:     cargo run -q -p klarna-sandbox -- trigger completed --order <klarna order id>\n\n  Ctrl-C stops everything.\n",
        data_dir.join("gateway.db").display(),
        gateway_port + 1
    );
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        if let Some(name) = exited(&mut children) {
            break Err(format!("{name} exited unexpectedly"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    shutdown(&mut children);
    eprintln!("demo stopped");
    result
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn exited(children: &mut [(&'static str, Child)]) -> Option<&'static str> {
    children
        .iter_mut()
        .find_map(|(name, c)| matches!(c.try_wait(), Ok(Some(_))).then_some(*name))
}

/// SIGTERM (both servers shut down gracefully on it), then SIGKILL after 10 s.
fn shutdown(children: &mut Vec<(&'static str, Child)>) {
    for (_, child) in children.iter() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill has no memory-safety preconditions; pid is our own child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (name, child) in children.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    eprintln!("{name} stopped ({status})");
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!("{name} killed after 10 s");
                    break;
                }
            }
        }
    }
    children.clear();
}
