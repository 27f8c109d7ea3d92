//! The Odoo connector: reads sale orders over Odoo's external JSON-RPC API
//! (`/jsonrpc`, `common.authenticate`, `object.execute_kw`).
//!
//! Odoo is the only source of truth for amounts. The connector asks `fields_get` which
//! optional fields exist (`is_delivery` comes with `delivery`, `is_reward_line` with
//! `sale_loyalty`), so it works whichever of those modules a shop has installed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use klarna_types::odoo::{
    AttributeValue, Many2one, OdooCurrency, OrderDocument, Partner, Partners, Product, Reward,
    SaleOrder, SaleOrderLine, Tax,
};
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

const ORDER_FIELDS: &[&str] = &[
    "name",
    "state",
    "access_token",
    "currency_id",
    "amount_untaxed",
    "amount_tax",
    "amount_total",
    "partner_id",
    "partner_invoice_id",
    "partner_shipping_id",
    "fiscal_position_id",
    "tax_calculation_rounding_method",
    "order_line",
];
const LINE_FIELDS: &[&str] = &[
    "sequence",
    "name",
    "display_type",
    "product_id",
    "product_type",
    "product_uom_qty",
    "product_uom",
    "price_unit",
    "discount",
    "tax_id",
    "price_subtotal",
    "price_tax",
    "price_total",
    "is_delivery",
    "is_reward_line",
    "reward_id",
    "is_downpayment",
    "product_no_variant_attribute_value_ids",
];
const TAX_FIELDS: &[&str] = &[
    "name",
    "amount",
    "amount_type",
    "price_include",
    "include_base_amount",
    "children_tax_ids",
];
const PARTNER_FIELDS: &[&str] = &[
    "name",
    "title",
    "street_name",
    "street_number",
    "street_number2",
    "is_company",
    "company_name",
    "commercial_company_name",
    "street",
    "street2",
    "zip",
    "city",
    "state_id",
    "country_code",
    "phone",
    "mobile",
    "email",
    "vat",
    "lang",
];

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

    async fn execute_kw(
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

    async fn read(
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

    /// Which of `wanted` exist on `model` in this Odoo (asked once per model).
    async fn existing(
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

    /// `product.template.attribute.value` records by id.
    async fn attribute_values(
        &self,
        ids: &BTreeSet<i64>,
    ) -> Result<HashMap<i64, AttributeValue>, OdooError> {
        let model = "product.template.attribute.value";
        self.read(model, ids, &["name", "display_name"])
            .await?
            .into_iter()
            .map(|r| decode::<AttributeValue>(model, r).map(|v| (v.id, v)))
            .collect()
    }

    /// Each loyalty reward with its program's type, when sale_loyalty is installed.
    async fn rewards(&self, ids: &BTreeSet<i64>) -> Result<HashMap<i64, Reward>, OdooError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rewards = self
            .read("loyalty.reward", ids, &["reward_type", "program_id"])
            .await?;
        let program_ids: BTreeSet<i64> = rewards
            .iter()
            .filter_map(|r| many2one_id(r.get("program_id")))
            .collect();
        let programs = by_id(
            self.read("loyalty.program", &program_ids, &["program_type"])
                .await?,
        );
        rewards
            .into_iter()
            .map(|r| {
                let program_type = many2one_id(r.get("program_id"))
                    .and_then(|p| programs.get(&p))
                    .and_then(|p| p.get("program_type"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let reward = Reward {
                    program_type,
                    ..decode::<Reward>("loyalty.reward", r)?
                };
                Ok((reward.id, reward))
            })
            .collect()
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

    /// The sale order named `reference` with everything the mapping needs, or `None`.
    /// Each record is decoded into its type as it is read; what Odoo keeps in other
    /// models (products, attribute values, rewards, taxes, partners' states) is joined in
    /// as typed values.
    pub async fn read_order(&self, reference: &str) -> Result<Option<OrderDocument>, OdooError> {
        self.read_order_if(reference, |_| true).await
    }

    /// [`Self::read_order`], when `admit` accepts the order record itself — checked on the
    /// first read, before the ten or so that complete the document: a caller who may not
    /// see the order (a wrong access token) costs one Odoo call, as an unknown order does,
    /// and cannot tell the two apart by the time the answer takes.
    pub async fn read_order_if(
        &self,
        reference: &str,
        admit: impl FnOnce(&SaleOrder) -> bool,
    ) -> Result<Option<OrderDocument>, OdooError> {
        let found = self
            .execute_kw(
                "sale.order",
                "search_read",
                json!([[["name", "=", reference]]]),
                json!({"fields": ORDER_FIELDS, "limit": 1}),
            )
            .await?;
        let Some(order) = records(found, "sale.order")?.into_iter().next() else {
            return Ok(None);
        };
        let order: SaleOrder = decode("sale.order", order)?;
        if !admit(&order) {
            return Ok(None);
        }
        let line_ids: BTreeSet<i64> = order.order_line.iter().copied().collect();
        let line_fields = self.existing("sale.order.line", LINE_FIELDS).await?;
        // The raw rows still name what the typed line does not hold (reward, unit,
        // attribute values); both are kept side by side.
        let raw_lines = self
            .read("sale.order.line", &line_ids, &line_fields)
            .await?;
        let product_ids: BTreeSet<i64> = raw_lines
            .iter()
            .filter_map(|l| many2one_id(l.get("product_id")))
            .collect();
        let raw_products = self
            .read(
                "product.product",
                &product_ids,
                &[
                    "default_code",
                    "type",
                    "product_template_attribute_value_ids",
                ],
            )
            .await?;
        let value_ids: BTreeSet<i64> = raw_products
            .iter()
            .flat_map(|p| ids_of(p.get("product_template_attribute_value_ids")))
            .chain(
                raw_lines
                    .iter()
                    .flat_map(|l| ids_of(l.get("product_no_variant_attribute_value_ids"))),
            )
            .collect();
        let values = self.attribute_values(&value_ids).await?;
        let values_of = |ids: BTreeSet<i64>| -> Vec<AttributeValue> {
            ids.iter()
                .filter_map(|id| values.get(id))
                .cloned()
                .collect()
        };
        let products: HashMap<i64, Product> = raw_products
            .into_iter()
            .map(|p| {
                let attribute_values =
                    values_of(ids_of(p.get("product_template_attribute_value_ids")));
                let product = Product {
                    attribute_values,
                    ..decode::<Product>("product.product", p)?
                };
                Ok((product.id, product))
            })
            .collect::<Result<_, OdooError>>()?;
        let reward_ids: BTreeSet<i64> = raw_lines
            .iter()
            .filter_map(|l| many2one_id(l.get("reward_id")))
            .collect();
        let rewards = self.rewards(&reward_ids).await?;

        let mut lines = raw_lines
            .into_iter()
            .map(|raw| {
                let reward =
                    many2one_id(raw.get("reward_id")).and_then(|id| rewards.get(&id).cloned());
                let no_variant_attribute_values =
                    values_of(ids_of(raw.get("product_no_variant_attribute_value_ids")));
                let product_uom_name = raw
                    .get("product_uom")
                    .and_then(|u| u.get(1))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let line: SaleOrderLine = decode("sale.order.line", raw)?;
                Ok(SaleOrderLine {
                    product: line
                        .product_id
                        .as_ref()
                        .and_then(|p| products.get(&p.id()).cloned()),
                    no_variant_attribute_values,
                    reward,
                    product_uom_name,
                    ..line
                })
            })
            .collect::<Result<Vec<_>, OdooError>>()?;
        lines.sort_by_key(|l| (l.sequence, l.id));

        let mut tax_ids: BTreeSet<i64> = lines
            .iter()
            .flat_map(|l| l.tax_id.iter().copied())
            .collect();
        let mut taxes: Vec<Tax> = self.read_as("account.tax", &tax_ids, TAX_FIELDS).await?;
        let children: BTreeSet<i64> = taxes
            .iter()
            .flat_map(|t| t.children_tax_ids.iter().copied())
            .filter(|id| !tax_ids.contains(id))
            .collect();
        taxes.extend(
            self.read_as::<Tax>("account.tax", &children, TAX_FIELDS)
                .await?,
        );
        tax_ids.extend(children);

        let currency_id = order.currency_id.id();
        let currency = self
            .read_as::<OdooCurrency>(
                "res.currency",
                &BTreeSet::from([currency_id]),
                &["name", "decimal_places"],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| OdooError::Shape(format!("res.currency {currency_id} not readable")))?;

        let roles = [
            order.partner_id.as_ref(),
            order.partner_invoice_id.as_ref(),
            order.partner_shipping_id.as_ref(),
        ];
        let partner_ids: BTreeSet<i64> = roles.iter().flatten().map(|p| p.id()).collect();
        let partner_fields = self.existing("res.partner", PARTNER_FIELDS).await?;
        let raw_partners = self
            .read("res.partner", &partner_ids, &partner_fields)
            .await?;
        let state_ids: BTreeSet<i64> = raw_partners
            .iter()
            .filter_map(|p| many2one_id(p.get("state_id")))
            .collect();
        let states = by_id(
            self.read("res.country.state", &state_ids, &["code"])
                .await?,
        );
        let partners: HashMap<i64, Partner> = raw_partners
            .into_iter()
            .map(|raw| {
                let state_code = many2one_id(raw.get("state_id"))
                    .and_then(|id| states.get(&id))
                    .and_then(|s| s.get("code"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let partner = Partner {
                    state_code,
                    ..decode::<Partner>("res.partner", raw)?
                };
                Ok((partner.id, partner))
            })
            .collect::<Result<_, OdooError>>()?;
        let partner = |role: Option<&Many2one>| role.and_then(|p| partners.get(&p.id()).cloned());
        Ok(Some(OrderDocument {
            partners: Partners {
                partner_id: partner(roles[0]),
                partner_invoice_id: partner(roles[1]),
                partner_shipping_id: partner(roles[2]),
            },
            order,
            lines,
            taxes,
            currency,
        }))
    }

    /// `read` of records decoded into `T`.
    async fn read_as<T: DeserializeOwned>(
        &self,
        model: &str,
        ids: &BTreeSet<i64>,
        fields: &[&str],
    ) -> Result<Vec<T>, OdooError> {
        self.read(model, ids, fields)
            .await?
            .into_iter()
            .map(|r| decode(model, r))
            .collect()
    }
}

/// One record as its type; a shape we cannot read names the model and the field.
fn decode<T: DeserializeOwned>(model: &str, record: Map<String, Value>) -> Result<T, OdooError> {
    serde_json::from_value(Value::Object(record))
        .map_err(|e| OdooError::Shape(format!("{model}: {e}")))
}

fn records(value: Value, model: &str) -> Result<Vec<Map<String, Value>>, OdooError> {
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

fn by_id(rows: Vec<Map<String, Value>>) -> HashMap<i64, Map<String, Value>> {
    rows.into_iter()
        .filter_map(|r| Some((r.get("id")?.as_i64()?, r)))
        .collect()
}

fn many2one_id(value: Option<&Value>) -> Option<i64> {
    value?.get(0)?.as_i64()
}

fn ids_of(value: Option<&Value>) -> BTreeSet<i64> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}
