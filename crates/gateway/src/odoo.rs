//! The Odoo connector: reads sale orders over Odoo's external JSON-RPC API
//! (`/jsonrpc`, `common.authenticate`, `object.execute_kw`).
//!
//! Odoo is the only source of truth for amounts. The connector asks `fields_get` which
//! optional fields exist (`is_delivery` comes with `delivery`, `is_reward_line` with
//! `sale_loyalty`), so it works whichever of those modules a shop has installed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

/// Where the Odoo password or API key comes from, each time it is needed.
#[derive(Clone)]
pub struct PasswordSource(Arc<dyn Fn() -> Option<Zeroizing<String>> + Send + Sync>);

impl PasswordSource {
    pub fn new(f: impl Fn() -> Option<Zeroizing<String>> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A password given directly (tests, the `map` dry run).
    pub fn fixed(password: &str) -> Self {
        let p = Zeroizing::new(password.to_owned());
        Self::new(move || Some(p.clone()))
    }

    fn get(&self) -> Result<Zeroizing<String>, OdooError> {
        (self.0)().ok_or_else(|| {
            OdooError::Shape("no Odoo password is configured (odoo.password)".into())
        })
    }
}

impl std::fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug)]
pub struct OdooConfig {
    /// Odoo's base URL, e.g. `https://shop.example.com`.
    pub url: String,
    pub db: String,
    pub login: String,
    /// Password or API key. Never logged.
    pub password: PasswordSource,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OdooError {
    #[error("cannot reach Odoo: {0}")]
    Transport(String),
    #[error("Odoo refused the login for {login:?} on database {db:?}")]
    Login { login: String, db: String },
    #[error("Odoo error {name}: {message}")]
    Server { name: String, message: String },
    #[error("unexpected answer from Odoo: {0}")]
    Shape(String),
}

/// What the addon writes in `provider_reference` of a capture or refund transaction, before
/// the gateway's operation id (`OPERATION_REFERENCE` in the addon's payment_transaction.py).
pub const OPERATION_REFERENCE: &str = "klarna-op-";

pub struct OdooClient {
    http: reqwest::Client,
    config: OdooConfig,
    uid: OnceCell<i64>,
    /// Per model, the fields this Odoo has (optional modules add some).
    fields: tokio::sync::Mutex<HashMap<&'static str, Arc<BTreeSet<String>>>>,
}

impl OdooClient {
    pub fn new(config: OdooConfig) -> Result<Self, OdooError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| OdooError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            config,
            uid: OnceCell::new(),
            fields: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    async fn call(&self, service: &str, method: &str, args: Value) -> Result<Value, OdooError> {
        let request = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": 1,
        });
        let url = format!("{}/jsonrpc", self.config.url.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .json(&request)
            .send()
            .await
            .map_err(|e| OdooError::Transport(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(OdooError::Transport(format!("HTTP {}", response.status())));
        }
        let mut answer: Value = response
            .json()
            .await
            .map_err(|e| OdooError::Shape(e.without_url().to_string()))?;
        if let Some(error) = answer.get("error") {
            let data = error.get("data").unwrap_or(&Value::Null);
            return Err(OdooError::Server {
                name: data
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                message: data
                    .get("message")
                    .or_else(|| error.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        Ok(answer
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    async fn uid(&self) -> Result<i64, OdooError> {
        self.uid
            .get_or_try_init(|| async {
                let c = &self.config;
                let password = c.password.get()?;
                let uid = self
                    .call(
                        "common",
                        "authenticate",
                        json!([c.db, c.login, password.as_str(), {}]),
                    )
                    .await?;
                uid.as_i64().ok_or_else(|| OdooError::Login {
                    login: c.login.clone(),
                    db: c.db.clone(),
                })
            })
            .await
            .copied()
    }

    pub(crate) async fn execute_kw(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, OdooError> {
        let uid = self.uid().await?;
        let c = &self.config;
        let password = c.password.get()?;
        self.call(
            "object",
            "execute_kw",
            json!([c.db, uid, password.as_str(), model, method, args, kwargs]),
        )
        .await
    }

    /// `read` of `ids` of `model`: each record's `id` and `fields`.
    pub(crate) async fn read_records(
        &self,
        model: &str,
        ids: &BTreeSet<i64>,
        fields: &[&str],
    ) -> Result<Vec<Map<String, Value>>, OdooError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().copied().collect();
        let rows = self
            .execute_kw(model, "read", json!([ids]), json!({"fields": fields}))
            .await?;
        records(rows, model)
    }

    /// Which of `wanted` exist on `model` in this Odoo, asked once per model.
    pub(crate) async fn existing_fields(
        &self,
        model: &'static str,
        wanted: &[&'static str],
    ) -> Result<Vec<&'static str>, OdooError> {
        let known = {
            let cached = self.fields.lock().await.get(model).cloned();
            match cached {
                Some(k) => k,
                None => {
                    let answer = self
                        .execute_kw(
                            model,
                            "fields_get",
                            json!([]),
                            json!({"attributes": ["type"]}),
                        )
                        .await?;
                    let known: BTreeSet<String> = answer
                        .as_object()
                        .ok_or_else(|| {
                            OdooError::Shape(format!("{model}.fields_get did not return an object"))
                        })?
                        .keys()
                        .cloned()
                        .collect();
                    let known = Arc::new(known);
                    self.fields.lock().await.insert(model, known.clone());
                    known
                }
            }
        };
        Ok(wanted
            .iter()
            .copied()
            .filter(|f| known.contains(*f))
            .collect())
    }

    /// Odoo's version (`common.version`, no login needed): whether Odoo answers at all.
    /// Logs in (once per client): the user id.
    pub async fn login(&self) -> Result<i64, OdooError> {
        self.uid().await
    }

    /// Tries what reading `model` takes, harmlessly: a search for one record, which Odoo
    /// answers `AccessError` when the user may not read the model.
    pub async fn try_read(&self, model: &str) -> Result<(), OdooError> {
        self.execute_kw(model, "search", json!([[]]), json!({"limit": 1}))
            .await
            .map(drop)
    }

    /// Whether the gateway's user is in the group with this XML id (`base.group_system`).
    pub async fn has_group(&self, group: &str) -> Result<bool, OdooError> {
        let uid = self.uid().await?;
        let answer = self
            .execute_kw("res.users", "has_group", json!([[uid], group]), json!({}))
            .await?;
        answer
            .as_bool()
            .ok_or_else(|| OdooError::Shape("res.users.has_group did not answer a boolean".into()))
    }

    /// Whether this Odoo can render PDF reports (`ok`, `install`, `upgrade`, `broken`,
    /// `workers`): an order confirmation e-mail carries one.
    pub async fn pdf_state(&self) -> Result<String, OdooError> {
        let answer = self
            .execute_kw(
                "ir.actions.report",
                "get_wkhtmltopdf_state",
                json!([]),
                json!({}),
            )
            .await?;
        answer
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| OdooError::Shape("get_wkhtmltopdf_state did not answer a string".into()))
    }

    pub async fn version(&self) -> Result<Value, OdooError> {
        self.call("common", "version", json!([])).await
    }

    /// The state of Odoo's payment transaction for a Klarna order (`payment.transaction`
    /// whose `provider_reference` is the order id), if Odoo has one.
    pub async fn transaction_state(
        &self,
        klarna_order_id: &str,
    ) -> Result<Option<String>, OdooError> {
        let found = self
            .execute_kw(
                "payment.transaction",
                "search_read",
                json!([[
                    ["provider_reference", "=", klarna_order_id],
                    ["source_transaction_id", "=", false]
                ]]),
                json!({"fields": ["state"], "limit": 1}),
            )
            .await?;
        Ok(records(found, "payment.transaction")?
            .into_iter()
            .next()
            .and_then(|r| r.get("state").and_then(Value::as_str).map(str::to_owned)))
    }

    /// Whether Odoo's Klarna checkout transaction for a sale order (the latest draft, made
    /// when the shopper pressed Pay) asks to save the payment method (`tokenize`: the
    /// shopper ticked "Save my payment details", or the order needs a token).
    pub async fn checkout_tokenizes(&self, sale_order_id: i64) -> Result<bool, OdooError> {
        let found = self
            .execute_kw(
                "payment.transaction",
                "search_read",
                json!([[
                    ["sale_order_ids", "in", [sale_order_id]],
                    ["provider_code", "=", "klarna"],
                    ["state", "=", "draft"],
                    ["source_transaction_id", "=", false]
                ]]),
                json!({"fields": ["tokenize"], "order": "id desc", "limit": 1}),
            )
            .await?;
        Ok(records(found, "payment.transaction")?
            .into_iter()
            .next()
            .and_then(|r| r.get("tokenize").and_then(Value::as_bool))
            .unwrap_or(false))
    }

    /// The state of each of Odoo's transactions for the gateway's operations (the capture
    /// and refund transactions the addon keeps, children or grandchildren of the payment's,
    /// whose `provider_reference` is `klarna-op-<operation id>`), by operation id. An
    /// operation Odoo has no transaction for is absent. Were there two (a duplicate), the
    /// one furthest along counts.
    pub async fn operation_states(
        &self,
        operation_ids: &[i64],
    ) -> Result<HashMap<i64, String>, OdooError> {
        if operation_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let references: Vec<String> = operation_ids
            .iter()
            .map(|id| format!("{OPERATION_REFERENCE}{id}"))
            .collect();
        let found = self
            .execute_kw(
                "payment.transaction",
                "search_read",
                json!([[["provider_reference", "in", references]]]),
                json!({"fields": ["provider_reference", "state"]}),
            )
            .await?;
        let rank = |state: &str| match state {
            "done" => 3,
            "cancel" | "error" => 2,
            "authorized" | "pending" => 1,
            _ => 0,
        };
        let mut states: HashMap<i64, String> = HashMap::new();
        for r in records(found, "payment.transaction")? {
            let Some(id) = r
                .get("provider_reference")
                .and_then(Value::as_str)
                .and_then(|p| p.strip_prefix(OPERATION_REFERENCE))
                .and_then(|id| id.parse::<i64>().ok())
            else {
                continue;
            };
            let state = r.get("state").and_then(Value::as_str).unwrap_or("draft");
            if states.get(&id).is_none_or(|s| rank(s) < rank(state)) {
                states.insert(id, state.to_owned());
            }
        }
        Ok(states)
    }
}

/// One record as its type; a shape we cannot read names the model and the field.
pub(crate) fn decode<T: DeserializeOwned>(
    model: &str,
    record: Map<String, Value>,
) -> Result<T, OdooError> {
    serde_json::from_value(Value::Object(record))
        .map_err(|e| OdooError::Shape(format!("{model}: {e}")))
}

pub(crate) fn records(value: Value, model: &str) -> Result<Vec<Map<String, Value>>, OdooError> {
    match value {
        Value::Array(rows) => rows
            .into_iter()
            .map(|r| match r {
                Value::Object(m) => Ok(m),
                _ => Err(OdooError::Shape(format!(
                    "{model}: a record is not an object"
                ))),
            })
            .collect(),
        _ => Err(OdooError::Shape(format!(
            "{model}: expected a list of records"
        ))),
    }
}
