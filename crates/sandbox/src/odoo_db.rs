//! The Odoo 18 database behind the sandbox's `/jsonrpc`: sale orders that a real Odoo 18
//! computed (the project's fixtures) and the demo orders, split back into Odoo's models,
//! with the search, read and write semantics the gateway relies on, and the payment
//! transactions the payment_klarna addon records. `odoo.rs` serves it over HTTP.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, RwLock};

use serde_json::{Map, Value, json};

use serde::{Deserialize, Serialize};

const FIXTURES: &str = include_str!("../../../fixtures/odoo18-orders.jsonl");
/// Hand-made orders for the demo: a Swedish shopper with a coupon, three tax rates, a
/// fractional quantity and shipping; a US order with sales tax; a Swedish business.
const DEMO_ORDERS: &str = include_str!("../data/demo-orders.jsonl");

pub type Record = Map<String, Value>;

type Tables = BTreeMap<String, BTreeMap<i64, Record>>;

/// The records in a fixture's list (none when the key is missing or not a list).
fn objects(list: Option<&Value>) -> impl Iterator<Item = &Record> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// `payment.transaction`'s fields the stand-in keeps (known before any record exists).
pub const TRANSACTION_FIELDS: &[&str] = &[
    "id",
    "reference",
    "provider_code",
    "provider_reference",
    "sale_order_name",
    "sale_order_ids",
    "amount",
    "currency",
    "operation",
    "state",
    "state_message",
    "source_transaction_id",
    "klarna_confirmation_mail",
    "tokenize",
    "token_id",
];

/// What the addon names a capture's or refund's transaction after.
pub const OPERATION_REFERENCE: &str = "klarna-op-";

/// The Klarna provider's settings in this Odoo, and the gateway user's rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OdooSettings {
    /// Where the addon reaches the gateway (`klarna_gateway_url`).
    pub gateway_url: Option<String>,
    /// When the order confirmation goes out: `authorization` or `capture` (the first done
    /// capture). The choice made when a payment is authorized sticks to that payment.
    pub confirmation_mail: String,
    /// Whether the gateway's Odoo user is in Invoicing/Billing, which reading
    /// `payment.transaction` takes; without it Odoo answers `AccessError`.
    pub billing_group: bool,
    /// What Odoo's `ir.actions.report.get_wkhtmltopdf_state` answers: `ok`, or `install`
    /// when the server has no wkhtmltopdf (then a real Odoo cannot confirm an order whose
    /// confirmation e-mail carries the PDF, and the shopper waits forever).
    pub wkhtmltopdf: String,
}

impl Default for OdooSettings {
    fn default() -> Self {
        Self {
            gateway_url: None,
            confirmation_mail: "authorization".into(),
            billing_group: true,
            wkhtmltopdf: "ok".into(),
        }
    }
}

/// One order confirmation e-mail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mail {
    /// The sale order.
    pub order: String,
    /// `authorization` or `capture`: what sent it.
    pub sent_at: &'static str,
    /// The payment's transaction.
    pub transaction: i64,
    /// Captured when it was sent (done captures; the payment's own amount when it was
    /// captured whole).
    pub captured: f64,
}

/// Odoo's tables, by model name and record id. The payment addon's transactions are
/// written at run time (by the addon route in `odoo.rs`).
#[derive(Debug, Default)]
pub struct Database {
    pub(crate) models: RwLock<Tables>,
    /// Gateway notifications already applied (by event id).
    pub(crate) seen_events: Mutex<HashSet<String>>,
    /// The Klarna provider's settings and the gateway user's rights
    /// (kept by the `odoo_payment` module).
    pub(crate) settings: Mutex<OdooSettings>,
    /// Order confirmations sent, in order.
    pub(crate) mails: Mutex<Vec<Mail>>,
}

/// Keys the fixtures add to `sale.order.line` that are not fields of that model.
const LINE_EXPANSIONS: &[&str] = &[
    "product",
    "product_uom_name",
    "no_variant_attribute_values",
    "reward",
];

impl Database {
    /// The demo database: the demo orders and every fixture order, as Odoo stores them.
    pub fn demo() -> Self {
        let mut db = Self::default();
        // Odoo always has the model; the addon fills it at run time.
        db.models
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert("payment.transaction".into(), BTreeMap::new());
        db.models
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert("payment.token".into(), BTreeMap::new());
        for line in DEMO_ORDERS
            .lines()
            .chain(FIXTURES.lines())
            .filter(|l| !l.trim().is_empty())
        {
            if let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(line) {
                db.load_document(&doc);
            }
        }
        db
    }

    fn insert(&mut self, model: &str, record: Record) {
        if let Some(id) = record.get("id").and_then(Value::as_i64) {
            self.models
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(model.to_owned())
                .or_default()
                .insert(id, record);
        }
    }

    fn tables(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn load_document(&mut self, doc: &Record) {
        let Some(Value::Object(order)) = doc.get("order") else {
            return;
        };
        let order_ref = json!([order.get("id"), order.get("name")]);
        self.insert("sale.order", order.clone());
        for key in ["currency", "company"] {
            if let Some(Value::Object(r)) = doc.get(key) {
                let model = if key == "currency" {
                    "res.currency"
                } else {
                    "res.company"
                };
                self.insert(model, r.clone());
            }
        }
        for tax in objects(doc.get("taxes")) {
            self.insert("account.tax", tax.clone());
        }
        if let Some(Value::Object(partners)) = doc.get("partners") {
            for partner in partners.values() {
                if let Value::Object(p) = partner {
                    let mut p = p.clone();
                    let code = p.remove("state_code");
                    if let (Some(Value::Array(state)), Some(code)) = (p.get("state_id"), code) {
                        let mut st = Record::new();
                        st.insert("id".into(), state.first().cloned().unwrap_or(Value::Null));
                        st.insert("name".into(), state.get(1).cloned().unwrap_or(Value::Null));
                        st.insert("code".into(), code);
                        self.insert("res.country.state", st);
                    }
                    self.insert("res.partner", p);
                }
            }
        }
        for line in objects(doc.get("lines")) {
            let mut line = line.clone();
            if let Some(Value::Object(product)) = line.get("product") {
                let mut product = product.clone();
                for ptav in objects(product.remove("product_template_attribute_values").as_ref()) {
                    self.insert("product.template.attribute.value", ptav.clone());
                }
                self.insert("product.product", product);
            }
            for v in objects(line.get("no_variant_attribute_values")) {
                self.insert("product.template.attribute.value", v.clone());
            }
            if let Some(Value::Object(reward)) = line.get("reward") {
                if let Some(Value::Array(program)) = reward.get("program_id") {
                    let name = program.get(1).and_then(Value::as_str).unwrap_or("");
                    // The fixtures name their programs; Odoo stores the type on the program.
                    let kind = if name.to_lowercase().contains("gift") {
                        "gift_card"
                    } else if name.to_lowercase().contains("wallet") {
                        "ewallet"
                    } else {
                        "promotion"
                    };
                    let mut p = Record::new();
                    p.insert("id".into(), program.first().cloned().unwrap_or(Value::Null));
                    p.insert("name".into(), json!(name));
                    p.insert("program_type".into(), json!(kind));
                    self.insert("loyalty.program", p);
                }
                self.insert("loyalty.reward", reward.clone());
            }
            for key in LINE_EXPANSIONS {
                line.remove(*key);
            }
            line.insert("order_id".into(), order_ref.clone());
            self.insert("sale.order.line", line);
        }
    }

    /// All records of a model, in id order.
    pub fn records(&self, model: &str) -> Vec<Record> {
        self.tables()
            .get(model)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, model: &str, id: i64) -> Option<Record> {
        self.tables().get(model)?.get(&id).cloned()
    }

    pub fn search(&self, model: &str, domain: &Value) -> Result<Vec<i64>, RpcError> {
        let tables = self.tables();
        let table = table(&tables, model)?;
        let terms = parse_domain(domain)?;
        Ok(table
            .iter()
            .filter(|(_, r)| terms.iter().all(|t| t.matches(r)))
            .map(|(id, _)| *id)
            .collect())
    }

    pub fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[String],
    ) -> Result<Vec<Value>, RpcError> {
        let tables = self.tables();
        let table = table(&tables, model)?;
        // The payment addon's model has its fields before it has records.
        let known = |f: &String| {
            table.values().any(|r| r.contains_key(f))
                || (model == "payment.transaction" && TRANSACTION_FIELDS.contains(&f.as_str()))
        };
        if let Some(bad) = fields.iter().find(|f| !known(f)) {
            return Err(RpcError::value_error(format!(
                "Invalid field '{bad}' on model '{model}'"
            )));
        }
        Ok(ids
            .iter()
            .filter_map(|id| table.get(id))
            .map(|r| {
                if fields.is_empty() {
                    Value::Object(r.clone())
                } else {
                    let mut out = Record::new();
                    out.insert("id".into(), r.get("id").cloned().unwrap_or(Value::Null));
                    for f in fields {
                        out.insert(f.clone(), r.get(f).cloned().unwrap_or(Value::Bool(false)));
                    }
                    Value::Object(out)
                }
            })
            .collect())
    }

    /// `write`: sets fields on records (Odoo recomputes nothing here: callers write
    /// consistent amounts).
    pub fn write(&self, model: &str, ids: &[i64], values: &Record) -> Result<Value, RpcError> {
        let mut tables = self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let table = tables
            .get_mut(model)
            .ok_or_else(|| RpcError::no_model(model))?;
        for id in ids {
            let record = table.get_mut(id).ok_or_else(|| {
                RpcError::value_error(format!(
                    "Record does not exist or has been deleted. ({model}({id},))"
                ))
            })?;
            for (k, v) in values {
                record.insert(k.clone(), v.clone());
            }
        }
        Ok(Value::Bool(true))
    }

    /// `unlink`: deletes records (tests use it for an Odoo that lost what it was told).
    pub fn unlink(&self, model: &str, ids: &[i64]) -> Result<Value, RpcError> {
        let mut tables = self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let table = tables
            .get_mut(model)
            .ok_or_else(|| RpcError::no_model(model))?;
        for id in ids {
            table.remove(id);
        }
        Ok(Value::Bool(true))
    }

    pub fn fields_get(&self, model: &str) -> Result<Value, RpcError> {
        let tables = self.tables();
        let table = table(&tables, model)?;
        let mut fields = Record::new();
        for record in table.values() {
            for (name, value) in record {
                let kind = match value {
                    Value::Bool(_) => "boolean",
                    Value::Number(n) if n.is_i64() => "integer",
                    Value::Number(_) => "float",
                    Value::String(_) => "char",
                    Value::Array(a) if a.len() == 2 && a[1].is_string() => "many2one",
                    Value::Array(_) => "many2many",
                    _ => continue,
                };
                fields
                    .entry(name.clone())
                    .or_insert_with(|| json!({"type": kind, "string": name}));
            }
        }
        Ok(Value::Object(fields))
    }
}

fn table<'a>(tables: &'a Tables, model: &str) -> Result<&'a BTreeMap<i64, Record>, RpcError> {
    tables.get(model).ok_or_else(|| RpcError::no_model(model))
}

struct Term {
    field: String,
    op: String,
    value: Value,
}

impl Term {
    fn matches(&self, record: &Record) -> bool {
        let field = record.get(&self.field).unwrap_or(&Value::Bool(false));
        // A many2one compares by id, as in Odoo.
        let field = match field {
            Value::Array(a) if a.len() == 2 && a[1].is_string() => &a[0],
            other => other,
        };
        let list = self.value.as_array();
        // An x2many (a list of ids) matches as in Odoo: `in` when the sets meet, `=` when
        // it holds the id.
        if let Value::Array(ids) = field {
            return match self.op.as_str() {
                "in" => list.is_some_and(|l| l.iter().any(|v| ids.contains(v))),
                "not in" => list.is_none_or(|l| !l.iter().any(|v| ids.contains(v))),
                "=" => ids.contains(&self.value),
                "!=" => !ids.contains(&self.value),
                _ => false,
            };
        }
        match self.op.as_str() {
            "=" => field == &self.value,
            "!=" => field != &self.value,
            "in" => list.is_some_and(|l| l.contains(field)),
            "not in" => list.is_none_or(|l| !l.contains(field)),
            _ => false,
        }
    }
}

fn parse_domain(domain: &Value) -> Result<Vec<Term>, RpcError> {
    let items = match domain {
        Value::Array(items) => items,
        Value::Null => return Ok(Vec::new()),
        _ => return Err(RpcError::value_error("Invalid domain")),
    };
    let mut terms = Vec::new();
    for item in items {
        match item {
            Value::String(op) if op == "&" => {}
            Value::Array(t) if t.len() == 3 => {
                let (Some(field), Some(op)) = (t[0].as_str(), t[1].as_str()) else {
                    return Err(RpcError::value_error(format!("Invalid leaf {item}")));
                };
                if !["=", "!=", "in", "not in"].contains(&op) {
                    return Err(RpcError::value_error(format!(
                        "Invalid operator {op:?} (the sandbox knows =, !=, in, not in)"
                    )));
                }
                terms.push(Term {
                    field: field.to_owned(),
                    op: op.to_owned(),
                    value: t[2].clone(),
                });
            }
            other => return Err(RpcError::value_error(format!("Invalid leaf {other}"))),
        }
    }
    Ok(terms)
}

/// An error in Odoo's JSON-RPC envelope.
#[derive(Debug)]
pub struct RpcError {
    name: &'static str,
    pub message: String,
}

impl RpcError {
    pub fn value_error(message: impl Into<String>) -> Self {
        Self {
            name: "builtins.ValueError",
            message: message.into(),
        }
    }

    /// Odoo 18's answer for a model it does not have (a module not installed): a
    /// `UserError`, as a real Odoo 18 answered `execute_kw` on `loyalty.reward` without
    /// the loyalty module.
    pub fn no_model(model: &str) -> Self {
        Self {
            name: "odoo.exceptions.UserError",
            message: format!("Object {model} doesn't exist"),
        }
    }

    /// Odoo's answer to a read the user's groups do not allow.
    pub fn access_error(message: impl Into<String>) -> Self {
        Self {
            name: "odoo.exceptions.AccessError",
            message: message.into(),
        }
    }

    pub fn access_denied() -> Self {
        Self {
            name: "odoo.exceptions.AccessDenied",
            message: "Access Denied".into(),
        }
    }

    pub fn into_json(self) -> Value {
        json!({
            "code": 200,
            "message": "Odoo Server Error",
            "data": {
                "name": self.name,
                "debug": "",
                "message": self.message,
                "arguments": [self.message],
                "context": {}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_database_holds_every_fixture_order_split_into_models() {
        let db = Database::demo();
        assert_eq!(db.records("sale.order").len(), 63);
        let order = db
            .records("sale.order")
            .into_iter()
            .next()
            .expect("an order");
        let line_ids = order["order_line"].as_array().expect("line ids");
        for id in line_ids {
            let line = db
                .get("sale.order.line", id.as_i64().expect("id"))
                .expect("line");
            assert!(!line.contains_key("product"), "expansions are removed");
        }
    }

    #[test]
    fn demo_orders_are_valid_klarna_orders_that_exercise_the_mapping() {
        use klarna_types::klarna::LineType;
        use klarna_types::mapping::{MappingOptions, map_order};
        use klarna_types::odoo::OrderDocument;
        let bodies: Vec<_> = DEMO_ORDERS
            .lines()
            .map(|l| {
                let doc: OrderDocument = serde_json::from_str(l).expect("demo order parses");
                map_order(&doc, &MappingOptions::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", doc.order.name))
            })
            .collect();
        let kinds = |i: usize| {
            bodies[i]
                .order_lines
                .iter()
                .filter_map(|l| l.kind)
                .collect::<Vec<_>>()
        };
        assert!(
            kinds(0).contains(&LineType::Discount) && kinds(0).contains(&LineType::ShippingFee)
        );
        let rates: std::collections::BTreeSet<_> =
            bodies[0].order_lines.iter().map(|l| l.tax_rate).collect();
        assert!(rates.len() >= 3, "several tax rates: {rates:?}");
        assert_eq!(bodies[1].purchase_country, "US");
        assert!(kinds(1).contains(&LineType::SalesTax));
        assert_eq!(
            bodies[2].customer.as_ref().and_then(|c| c.kind.as_deref()),
            Some("organization")
        );
    }
}
