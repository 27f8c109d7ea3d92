//! `klarna-gateway init`: a first configuration a merchant can run with. The settings given
//! (as flags, or answered at the prompts) go into a commented TOML file only its owner can
//! read; the secrets are sealed into the database, the shared secret and the admin token
//! generated; and what Odoo's Klarna provider needs is printed to paste there.
//!
//! Run again, it changes nothing it already set: a value the file has is replaced only with
//! `--force`, and a generated secret is never replaced (rotating one is its own step,
//! docs/operations.md).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use klarna_client::{Environment, Region};
use klarna_gateway::secrets::{
    ADMIN_TOKEN, KLARNA_PASSWORD, KLARNA_USERNAME, ODOO_PASSWORD, ODOO_SHARED_SECRET,
};
use klarna_gateway::{Gateway, GatewayError, vault};
use serde_json::Value;

use crate::settings::{Settings, is_given};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RegionArg {
    /// Europe.
    Eu,
    /// North America (US, CA, MX).
    Na,
    /// Oceania (AU, NZ).
    Oc,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvironmentArg {
    /// Klarna's test environment: test credentials, no real money.
    Playground,
    Production,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The region of the Klarna merchant account; with --klarna-environment it sets
    /// klarna_url to Klarna's host for both.
    #[arg(long, value_enum)]
    klarna_region: Option<RegionArg>,
    /// Klarna's environment [default: playground].
    #[arg(long, value_enum)]
    klarna_environment: Option<EnvironmentArg>,
    /// Replace values the file already holds with the ones given.
    #[arg(long)]
    force: bool,
}

/// The settings a production gateway cannot run without, with their prompts.
const REQUIRED: &[(&str, &str)] = &[
    ("odoo_url", "Odoo's URL (https://…)"),
    ("odoo_db", "Odoo's database"),
    ("odoo_login", "the Odoo login the gateway reads orders as"),
    (
        "public_url",
        "the gateway's public URL, as Klarna and shoppers reach it (https://…)",
    ),
];

/// The secrets the merchant gives (the others are generated), with their prompts.
const GIVEN_SECRETS: &[(&str, &str, &str)] = &[
    (KLARNA_USERNAME, "Klarna API username", "--klarna-username"),
    (
        KLARNA_PASSWORD,
        "Klarna API password",
        "KLARNA_PASSWORD in the environment",
    ),
    (
        ODOO_PASSWORD,
        "the Odoo user's password or API key",
        "ODOO_PASSWORD in the environment",
    ),
];

pub async fn run(mut settings: Settings, args: InitArgs) -> Result<(), GatewayError> {
    // Everything init makes — the data dir, the database, the key file, the config — holds
    // secrets or personal data: its owner's only, whatever the shell's umask.
    #[cfg(unix)]
    // SAFETY: umask only replaces this process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let path = settings
        .config
        .take()
        .unwrap_or_else(|| PathBuf::from("gateway.toml"));
    let secrets = std::mem::take(&mut settings.secrets);
    let interactive = std::io::stdin().is_terminal();
    if args.klarna_region.is_some() || args.klarna_environment.is_some() {
        if settings.klarna_url.is_some() {
            return Err(GatewayError::Config(
                "give --klarna-url or --klarna-region/--klarna-environment, not both".into(),
            ));
        }
        settings.klarna_url = Some(klarna_url(args.klarna_region, args.klarna_environment));
    }
    let existing = if path.exists() {
        Some(Settings::load(&path)?)
    } else {
        None
    };
    let before = match &existing {
        Some(s) => s.to_map()?,
        None => serde_json::Map::new(),
    };
    let given = settings.to_map()?;
    let conflicts: Vec<String> = given
        .iter()
        .filter(|(key, value)| {
            is_given(value) && before.get(*key).is_some_and(|b| is_given(b) && b != *value)
        })
        .map(|(key, value)| format!("{key} = {} (given {value})", before[key]))
        .collect();
    if !conflicts.is_empty() && !args.force {
        return Err(GatewayError::Config(format!(
            "{} already sets {}; run again with --force to replace {}. Nothing was changed",
            path.display(),
            conflicts.join(", "),
            if conflicts.len() == 1 { "it" } else { "them" }
        )));
    }
    let mut merged = settings.over(existing.unwrap_or_default())?;
    if merged.klarna_url.is_none() {
        let region = ask_choice(interactive, "Klarna region (eu, na, oc)", "eu")?;
        let environment = ask_choice(
            interactive,
            "Klarna environment (playground, production)",
            "playground",
        )?;
        merged.klarna_url = Some(klarna_url(
            RegionArg::from_str(&region, true).ok(),
            EnvironmentArg::from_str(&environment, true).ok(),
        ));
    }
    let mut missing = Vec::new();
    for &(key, prompt) in REQUIRED {
        if is_given(merged.to_map()?.get(key).unwrap_or(&Value::Null)) {
            continue;
        }
        match ask(interactive, prompt, false)? {
            Some(answer) => {
                let mut map = merged.to_map()?;
                map.insert(key.to_owned(), Value::String(answer));
                merged = Settings::from_map(map)?;
            }
            None => missing.push(format!("--{}", key.replace('_', "-"))),
        }
    }
    if !missing.is_empty() {
        return Err(GatewayError::Config(format!(
            "not set: {}; give them as flags (or run init at a terminal to be asked). Nothing was changed",
            missing.join(", ")
        )));
    }
    if merged.data_dir.is_none() {
        let cwd = std::env::current_dir()
            .map_err(|e| GatewayError::Config(format!("no working directory: {e}")))?;
        merged.data_dir = Some(cwd.join("data"));
    }
    let changed: Vec<String> = merged
        .to_map()?
        .into_iter()
        .filter(|(key, value)| is_given(value) && before.get(key) != Some(value))
        .map(|(key, _)| key)
        .collect();
    let file_state = if changed.is_empty() {
        "unchanged".to_owned()
    } else {
        vault::write_private(&path, &render(&merged)?)?;
        if before.is_empty() {
            "written".to_owned()
        } else {
            format!("updated: {}", changed.join(", "))
        }
    };

    // The gateway as `serve` will open it, with the secrets given here sealed.
    let (config, initial, _) = Settings {
        config: Some(path.clone()),
        secrets,
        ..Settings::default()
    }
    .resolve()?;
    let key_file = config.data_dir.join("master.keys");
    let key_created = config.master_keys.is_none() && !key_file.exists();
    let mut given = Vec::new();
    for (name, value) in [
        (KLARNA_USERNAME, &initial.klarna_username),
        (KLARNA_PASSWORD, &initial.klarna_password),
        (ODOO_PASSWORD, &initial.odoo_password),
        (ODOO_SHARED_SECRET, &initial.odoo_shared_secret),
        (ADMIN_TOKEN, &initial.admin_token),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            given.push(name);
        }
    }
    let public_url = config.public_url.clone().unwrap_or_default();
    let gateway = Gateway::new(config, initial).await?;
    let mut generated = Vec::new();
    for name in [ODOO_SHARED_SECRET, ADMIN_TOKEN] {
        if gateway.secrets.get(name).is_none() {
            gateway.secrets.set(name, &vault::random_secret()).await?;
            generated.push(name);
        }
    }
    let mut still_missing = Vec::new();
    for &(name, prompt, how) in GIVEN_SECRETS {
        if gateway.secrets.get(name).is_some() {
            continue;
        }
        match ask(interactive, prompt, name != KLARNA_USERNAME)? {
            Some(value) => {
                gateway.secrets.set(name, &value).await?;
                given.push(name);
            }
            None => still_missing.push(format!("{name} ({how})")),
        }
    }

    let mut out = std::io::stdout().lock();
    let region = region_label(gateway.config.klarna_url.as_str());
    let shared = gateway
        .secrets
        .get(ODOO_SHARED_SECRET)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let lines = [
        format!("{}: {file_state}", path.display()),
        format!(
            "master key: {}{}; keep a copy apart from the backups",
            if gateway.config.master_keys.is_some() {
                "GATEWAY_MASTER_KEYS".to_owned()
            } else {
                key_file.display().to_string()
            },
            if key_created { " (created)" } else { "" }
        ),
        format!(
            "secrets sealed: {}{}",
            if given.is_empty() {
                "none given now".to_owned()
            } else {
                format!("{} given now", given.join(", "))
            },
            if generated.is_empty() {
                "; the shared secret and admin token were kept".to_owned()
            } else {
                format!("; {} generated", generated.join(", "))
            }
        ),
        format!("Klarna's API: {}", gateway.config.klarna_url),
        String::new(),
        "In Odoo: Invoicing > Configuration > Payment Providers > Klarna, Configuration tab:"
            .into(),
        format!("  Gateway URL     {public_url}"),
        format!("  Shared Secret   {shared}"),
        format!("  Klarna Region   {region}"),
        "Save, set the provider to Test Mode, and check everything with:".into(),
        format!("  klarna-gateway doctor --config {}", path.display()),
    ];
    let admin_token = generated
        .contains(&ADMIN_TOKEN)
        .then(|| gateway.secrets.get(ADMIN_TOKEN))
        .flatten()
        .map(|token| {
            format!(
                "\nThe admin API's token, for your own scripts (Odoo signs with the shared secret \
                 instead). Shown this once; `klarna-gateway secrets set admin.token` replaces it:\n  {}",
                token.as_str()
            )
        });
    for line in lines.into_iter().chain(admin_token) {
        writeln!(out, "{line}").map_err(|e| GatewayError::Config(e.to_string()))?;
    }
    if still_missing.is_empty() {
        Ok(())
    } else {
        Err(GatewayError::Config(format!(
            "still to give: {}; run init again with them (what is set stays)",
            still_missing.join(", ")
        )))
    }
}

fn klarna_url(region: Option<RegionArg>, environment: Option<EnvironmentArg>) -> String {
    let region = match region.unwrap_or(RegionArg::Eu) {
        RegionArg::Eu => Region::Eu,
        RegionArg::Na => Region::Na,
        RegionArg::Oc => Region::Oc,
    };
    let environment = match environment.unwrap_or(EnvironmentArg::Playground) {
        EnvironmentArg::Playground => Environment::Playground,
        EnvironmentArg::Production => Environment::Live,
    };
    klarna_client::base_url(region, environment).to_owned()
}

/// The provider form's name of the region `url` is in (Europe when it is none of Klarna's).
fn region_label(url: &str) -> &'static str {
    match klarna_gateway::doctor::region_of(url) {
        Region::Eu => "Europe",
        Region::Na => "North America",
        Region::Oc => "Oceania",
    }
}

/// A line from the terminal, or `None` when there is none to ask (or the answer is empty).
fn ask(interactive: bool, prompt: &str, secret: bool) -> Result<Option<String>, GatewayError> {
    if !interactive {
        return Ok(None);
    }
    let io = |e: std::io::Error| GatewayError::Config(format!("reading the answer: {e}"));
    let answer = if secret {
        rpassword::prompt_password(format!("{prompt}: ")).map_err(io)?
    } else {
        eprint!("{prompt}: ");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(io)?;
        line
    };
    let answer = answer.trim().to_owned();
    Ok((!answer.is_empty()).then_some(answer))
}

fn ask_choice(interactive: bool, prompt: &str, default: &str) -> Result<String, GatewayError> {
    Ok(
        ask(interactive, &format!("{prompt} [{default}]"), false)?
            .unwrap_or_else(|| default.into()),
    )
}

/// The file: each setting that has a value with its `--help` text above it, then the rest
/// as comments to fill in.
fn render(settings: &Settings) -> Result<String, GatewayError> {
    let table = toml::Value::try_from(settings)
        .map_err(|e| GatewayError::Config(format!("settings: {e}")))?;
    let mut set = String::new();
    let mut unset = String::new();
    let command = <Settings as Args>::augment_args(clap::Command::new("klarna-gateway"));
    for arg in command.get_arguments() {
        let key = arg.get_id().as_str();
        let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) else {
            continue;
        };
        let comment: String = help
            .to_string()
            .lines()
            .map(|l| format!("# {l}\n").replace("# \n", "#\n"))
            .collect();
        let value = table.get(key).filter(|v| match v {
            toml::Value::Boolean(b) => *b,
            toml::Value::Array(items) => !items.is_empty(),
            _ => true,
        });
        match value {
            Some(value) => set.push_str(&format!("{comment}{key} = {value}\n\n")),
            None if is_setting(key) => unset.push_str(&format!("{comment}# {key} =\n\n")),
            None => {}
        }
    }
    Ok(format!(
        "# klarna-gateway's settings, written by `klarna-gateway init`.\n\
         # Secrets are not here: they are sealed in the database (see `klarna-gateway secrets`).\n\
         # Any setting here can also be given as a flag or in the environment (`--help`).\n\n\
         {set}# Not set: the defaults apply.\n\n{unset}"
    ))
}

/// Whether `key` is a setting of the file (not `--config`, not a secret).
fn is_setting(key: &str) -> bool {
    Settings::default()
        .to_map()
        .is_ok_and(|m| m.contains_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_written_reads_back_as_the_same_settings_with_every_key_explained() {
        let settings = Settings {
            odoo_url: Some("https://odoo.example".into()),
            allowed_origins: vec!["https://shop.example".into()],
            webhook_horizon_hours: Some(2),
            ..Settings::default()
        };
        let text = render(&settings).expect("renders");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gateway.toml");
        vault::write_private(&path, &text).expect("writes");
        let back = Settings::load(&path).expect("loads");
        assert_eq!(back.to_map().expect("map"), settings.to_map().expect("map"));
        assert!(text.contains("# Odoo base URL"), "{text}");
        assert!(
            text.contains("\nodoo_url = \"https://odoo.example\"\n"),
            "{text}"
        );
        assert!(
            text.contains("\n# listen =\n"),
            "an unset key is a comment: {text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn region_and_environment_name_klarnas_host() {
        assert_eq!(
            klarna_url(Some(RegionArg::Na), None),
            "https://api-na.playground.klarna.com"
        );
        assert_eq!(
            klarna_url(None, Some(EnvironmentArg::Production)),
            "https://api.klarna.com"
        );
        assert_eq!(region_label("https://api-oc.klarna.com"), "Oceania");
        assert_eq!(region_label("http://127.0.0.1:7070/na"), "North America");
    }
}
