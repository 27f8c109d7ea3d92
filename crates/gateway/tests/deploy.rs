//! The service files under `deploy/` are what their tools accept: systemd's own checks of
//! the units (and its exposure score), systemd-sysusers on the user file, and `nginx -t` on
//! the site file. `tests/doctor.rs` runs the site file in a real nginx.

mod common;

use std::path::{Path, PathBuf};

use common::tool;
use std::process::Command;

const UNITS: [&str; 2] = ["klarna-gateway.service", "klarna-gateway-worker.service"];

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn output(command: &mut Command) -> (bool, String) {
    let out = command.output().expect("runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The unit as installed, but starting the binary this test was built with.
fn unit_here(dir: &Path, unit: &str) -> PathBuf {
    let text = std::fs::read_to_string(deploy(&format!("systemd/{unit}"))).expect("unit");
    let path = dir.join(unit);
    std::fs::write(
        &path,
        text.replace(
            "/usr/local/bin/klarna-gateway",
            env!("CARGO_BIN_EXE_klarna-gateway"),
        ),
    )
    .expect("write");
    path
}

#[test]
fn the_systemd_units_verify_without_a_warning_and_are_locked_down() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    for unit in UNITS {
        let text = std::fs::read_to_string(deploy(&format!("systemd/{unit}"))).expect("unit");
        for directive in [
            "User=klarna-gateway",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "StateDirectory=klarna-gateway",
            "Restart=on-failure",
            "KillSignal=SIGTERM",
        ] {
            assert!(
                text.lines().any(|l| l == directive),
                "{unit} lacks {directive}"
            );
        }
        let path = unit_here(dir.path(), unit);
        // verify exits 0 even for an unknown key, so its output must be empty too.
        let (ok, said) = output(Command::new(&analyze).arg("verify").arg(&path));
        assert!(ok && said.trim().is_empty(), "{unit}: {said}");
        // systemd's exposure score, 0 (locked down) to 10; 2.0 and under is "OK".
        let (ok, said) = output(
            Command::new(&analyze)
                .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
                .arg(&path),
        );
        assert!(ok, "{unit} is exposed beyond 2.0:\n{said}");
    }
    // A unit with a mistake is caught the same way (the check can fail).
    let broken = dir.path().join("broken.service");
    std::fs::write(
        &broken,
        "[Service]\nExecStart=/bin/true\nProtectSystem=strickt\n",
    )
    .expect("write");
    let (_, said) = output(Command::new(&analyze).arg("verify").arg(&broken));
    assert!(!said.trim().is_empty(), "a bad value went unnoticed");
}

#[test]
fn systemd_sysusers_makes_the_gateways_user_without_a_login() {
    let Some(sysusers) = tool("systemd-sysusers") else {
        return;
    };
    let root = tempfile::tempdir().expect("root");
    std::fs::create_dir_all(root.path().join("etc")).expect("etc");
    let (ok, said) = output(
        Command::new(sysusers)
            .arg(format!("--root={}", root.path().display()))
            .arg(deploy("systemd/klarna-gateway.sysusers.conf")),
    );
    assert!(ok, "{said}");
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).expect("passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("klarna-gateway:"))
        .unwrap_or_else(|| panic!("no user in {passwd}"));
    assert!(
        line.ends_with(":/var/lib/klarna-gateway:/usr/sbin/nologin"),
        "{line}"
    );
}

#[test]
fn nginx_accepts_the_site_file() {
    let Some(nginx) = tool("nginx") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let prefix = dir.path().display().to_string();
    let (ok, said) = output(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=pay.example.com", "-keyout"])
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem")),
    );
    assert!(ok, "openssl: {said}");
    let site = std::fs::read_to_string(deploy("nginx/klarna-gateway.conf"))
        .expect("site")
        .replace(
            "/etc/letsencrypt/live/pay.example.com/fullchain.pem",
            &format!("{prefix}/cert.pem"),
        )
        .replace(
            "/etc/letsencrypt/live/pay.example.com/privkey.pem",
            &format!("{prefix}/key.pem"),
        );
    std::fs::write(dir.path().join("site.conf"), &site).expect("site");
    let conf = dir.path().join("nginx.conf");
    let main = |include: &str| {
        format!(
            "pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\nevents {{}}\nhttp {{\n \
             access_log off;\n client_body_temp_path {prefix}/body;\n proxy_temp_path \
             {prefix}/proxy;\n fastcgi_temp_path {prefix}/f;\n uwsgi_temp_path {prefix}/u;\n \
             scgi_temp_path {prefix}/s;\n include {prefix}/{include};\n}}\n"
        )
    };
    std::fs::write(&conf, main("site.conf")).expect("conf");
    let (ok, said) = output(
        Command::new(&nginx)
            .args(["-t", "-p", &prefix, "-c"])
            .arg(&conf),
    );
    assert!(ok, "nginx -t: {said}");
    // And `nginx -t` does catch a broken site file.
    std::fs::write(
        dir.path().join("broken.conf"),
        site.replace(
            "proxy_pass http://klarna_gateway;",
            "proxy_pass klarna_gateway;",
        ),
    )
    .expect("broken");
    std::fs::write(&conf, main("broken.conf")).expect("conf");
    let (ok, _) = output(
        Command::new(&nginx)
            .args(["-t", "-p", &prefix, "-c"])
            .arg(&conf),
    );
    assert!(!ok, "nginx -t accepted a proxy_pass without a scheme");
}

#[test]
fn the_alert_rules_check_and_fire_on_what_they_are_meant_to() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let rules = deploy("prometheus/klarna-gateway.rules.yml");
    let (ok, said) = output(Command::new(&promtool).args(["check", "rules"]).arg(&rules));
    assert!(ok, "promtool check rules: {said}");
    let (ok, said) = output(
        Command::new(&promtool)
            .args(["test", "rules"])
            .arg(deploy("prometheus/klarna-gateway.rules.test.yml")),
    );
    assert!(ok, "promtool test rules: {said}");
    // Every metric an alert names is one the gateway (or its Klarna client) records.
    let text = std::fs::read_to_string(&rules).expect("rules");
    let sources = [
        include_str!("../src/metrics.rs"),
        include_str!("../src/reconcile.rs"),
        include_str!("../src/frontdoor.rs"),
        include_str!("../../klarna-client/src/client.rs"),
    ]
    .concat();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if (word.starts_with("gateway_") || word.starts_with("klarna_")) && word.len() > 8 {
            assert!(
                sources.contains(&format!("\"{word}\"")),
                "{word} is no metric of ours"
            );
        }
    }
}
