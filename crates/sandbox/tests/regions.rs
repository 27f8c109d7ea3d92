//! Klarna's credentials belong to one region: at another region's host they are as unknown
//! as a wrong password (401). The sandbox serves EU at `/`, NA at `/na` and OC at `/oc`.

use klarna_sandbox::{Region, SandboxConfig};

async fn status(base: &str, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .get(format!(
            "{base}/payments/v1/sessions/00000000-0000-4000-8000-000000000000"
        ))
        .basic_auth(username, Some(password))
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

#[tokio::test]
async fn credentials_work_at_their_regions_host_only() {
    for (region, home) in [(Region::Eu, ""), (Region::Na, "/na"), (Region::Oc, "/oc")] {
        let config = SandboxConfig {
            region,
            lockout_after: 0,
            ..SandboxConfig::default()
        };
        let (addr, _sandbox) = klarna_sandbox::spawn(config.clone())
            .await
            .expect("sandbox");
        let (user, pass) = (config.username.as_str(), config.password.as_str());
        for prefix in ["", "/na", "/oc"] {
            let base = format!("http://{addr}{prefix}");
            // 404: authenticated, and no such session; 401: not known at this host.
            let expected = if prefix == home { 404 } else { 401 };
            assert_eq!(
                status(&base, user, pass).await,
                expected,
                "{region:?} at {prefix:?}"
            );
            assert_eq!(status(&base, user, "wrong").await, 401);
        }
    }
}
