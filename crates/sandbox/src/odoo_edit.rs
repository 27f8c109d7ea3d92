//! A confirmed order edited in the Odoo stand-in after Klarna authorized it, the way
//! payment_klarna does it: the order's records as the edit leaves them — not stored yet —
//! go to the gateway's `POST /admin/payments/{ref}/authorization`, and the edit is stored
//! only once the gateway answers that Klarna took it. A refusal leaves the order as Klarna
//! has it.
//!
//! The edits are those whose totals need no tax engine: lines removed, and copies of lines
//! added (a second one of an item, a fee line like one already there).

use std::collections::BTreeSet;

use klarna_types::odoo_fields::MODEL_FIELDS;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::odoo_db::{Database, Record};
use crate::odoo_payment::{GatewayCall, parent_of, str_of, to_minor};

/// What the merchant changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Edit {
    /// Lines (`sale.order.line` ids) taken off the order.
    pub remove_lines: Vec<i64>,
    /// Lines added again as new lines, each a copy of this one.
    pub copy_lines: Vec<i64>,
    /// Klarna's note of the change.
    pub description: Option<String>,
}

/// The order as the edit leaves it, until the gateway answers.
#[derive(Debug, Clone)]
pub struct EditedOrder {
    pub records: Map<String, Value>,
    /// The payment's transaction, whose amount follows when Klarna takes the edit.
    pub source_transaction: i64,
    pub call: GatewayCall,
}

fn ids(value: Option<&Value>) -> BTreeSet<i64> {
    match value {
        Some(Value::Array(items)) => match items.as_slice() {
            // A many2one: `[id, name]`.
            [Value::Number(id), Value::String(_)] => id.as_i64().into_iter().collect(),
            _ => items.iter().filter_map(Value::as_i64).collect(),
        },
        _ => BTreeSet::new(),
    }
}

fn collect(rows: &[Value], field: &str) -> BTreeSet<i64> {
    rows.iter().flat_map(|r| ids(r.get(field))).collect()
}

fn cents(value: &Value, decimals: u32) -> i64 {
    to_minor(value.as_f64().unwrap_or(0.0), decimals)
}

impl Database {
    /// `read` of `ids` of `model` with the fields the gateway reads that this model has.
    fn read_for_klarna(&self, model: &str, ids: BTreeSet<i64>) -> Vec<Value> {
        let known = self.fields_get(model).unwrap_or(Value::Null);
        let fields: Vec<String> = MODEL_FIELDS
            .iter()
            .find(|(m, _)| *m == model)
            .map(|(_, f)| *f)
            .unwrap_or_default()
            .iter()
            .filter(|f| known.get(**f).is_some())
            .map(|f| (*f).to_owned())
            .collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        self.read(model, &ids, &fields).unwrap_or_default()
    }

    /// The order's records as payment_klarna's `_klarna_order_records` reads them: every
    /// model the gateway reads, by model.
    pub fn order_records(&self, reference: &str) -> Result<Map<String, Value>, String> {
        let found = self
            .search("sale.order", &json!([["name", "=", reference]]))
            .map_err(|e| e.into_json().to_string())?;
        let order = self
            .read_for_klarna("sale.order", found.into_iter().collect())
            .into_iter()
            .next()
            .ok_or_else(|| format!("no sale order {reference}"))?;
        let lines = self.read_for_klarna("sale.order.line", ids(order.get("order_line")));
        let products = self.read_for_klarna("product.product", collect(&lines, "product_id"));
        let mut values = collect(&products, "product_template_attribute_value_ids");
        values.extend(collect(&lines, "product_no_variant_attribute_value_ids"));
        let mut tax_ids = collect(&lines, "tax_id");
        let taxes = self.read_for_klarna("account.tax", tax_ids.clone());
        tax_ids.extend(collect(&taxes, "children_tax_ids"));
        let mut partners = BTreeSet::new();
        for role in ["partner_id", "partner_invoice_id", "partner_shipping_id"] {
            partners.extend(ids(order.get(role)));
        }
        let partners = self.read_for_klarna("res.partner", partners);
        let mut out = Map::new();
        out.insert(
            "product.template.attribute.value".into(),
            json!(self.read_for_klarna("product.template.attribute.value", values)),
        );
        out.insert(
            "account.tax".into(),
            json!(self.read_for_klarna("account.tax", tax_ids)),
        );
        out.insert(
            "res.currency".into(),
            json!(self.read_for_klarna("res.currency", ids(order.get("currency_id")))),
        );
        out.insert(
            "res.country.state".into(),
            json!(self.read_for_klarna("res.country.state", collect(&partners, "state_id"))),
        );
        out.insert("res.partner".into(), json!(partners));
        out.insert("product.product".into(), json!(products));
        out.insert("sale.order.line".into(), json!(lines));
        out.insert("sale.order".into(), json!([order]));
        Ok(out)
    }

    /// The order `reference` with `edit` applied — its lines and Odoo's totals, which are
    /// sums of the lines' (rounded per line) — and the addon's call to the gateway. Nothing
    /// is stored: see [`Self::store_edit`].
    pub fn edit_order(&self, reference: &str, edit: &Edit) -> Result<EditedOrder, String> {
        let mut records = self.order_records(reference)?;
        let decimals = records["res.currency"][0]["decimal_places"]
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(2);
        let lines = records["sale.order.line"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let line_id = |l: &Value| l["id"].as_i64().unwrap_or(0);
        for id in edit.remove_lines.iter().chain(&edit.copy_lines) {
            if !lines.iter().any(|l| line_id(l) == *id) {
                return Err(format!("{reference} has no line {id}"));
            }
        }
        let mut kept: Vec<Value> = lines
            .iter()
            .filter(|l| !edit.remove_lines.contains(&line_id(l)))
            .cloned()
            .collect();
        let mut next_id = self
            .records("sale.order.line")
            .iter()
            .filter_map(|l| l.get("id").and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        for id in &edit.copy_lines {
            if let Some(original) = lines.iter().find(|l| line_id(l) == *id) {
                next_id += 1;
                let mut copy = original.clone();
                copy["id"] = json!(next_id);
                copy["sequence"] = json!(original["sequence"].as_i64().unwrap_or(0) + 1);
                kept.push(copy);
            }
        }
        let sum = |field: &str| -> f64 {
            let minor: i64 = kept.iter().map(|l| cents(&l[field], decimals)).sum();
            #[allow(clippy::cast_precision_loss)]
            let major = minor as f64 / 10f64.powi(i32::try_from(decimals).unwrap_or(2));
            major
        };
        let order = &mut records["sale.order"][0];
        order["amount_untaxed"] = json!(sum("price_subtotal"));
        order["amount_tax"] = json!(sum("price_tax"));
        order["amount_total"] = json!(sum("price_total"));
        order["order_line"] = kept.iter().map(|l| l["id"].clone()).collect();
        records.insert("sale.order.line".into(), Value::Array(kept));

        let source = self
            .records("payment.transaction")
            .into_iter()
            .filter(|t| {
                str_of(t, "sale_order_name") == reference
                    && parent_of(t).is_none()
                    && matches!(str_of(t, "state"), "authorized" | "pending")
            })
            .max_by_key(|t| t.get("id").and_then(Value::as_i64).unwrap_or(0))
            .ok_or_else(|| format!("{reference} has no Klarna authorization that can change"))?;
        let payment = match source.get("provider_reference").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => reference.to_owned(),
        };
        let authorized = cents(source.get("amount").unwrap_or(&Value::Null), decimals);
        let (captured, refunded) = self.expected_of(&source, decimals);
        let mut body = json!({
            "odoo_records": records,
            "expected_authorized": authorized,
            "expected_captured": captured,
            "expected_refunded": refunded,
        });
        if let Some(description) = &edit.description {
            body["description"] = json!(description);
        }
        let digest = request_digest(&body);
        Ok(EditedOrder {
            source_transaction: source.get("id").and_then(Value::as_i64).unwrap_or(0),
            records: body["odoo_records"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
            call: GatewayCall {
                path: format!("/admin/payments/{payment}/authorization"),
                idempotency_key: format!("odoo-edit-{payment}-{digest}"),
                body,
                draft: None,
            },
        })
    }

    /// Stores an edit the gateway took: the order's lines and totals as [`Self::edit_order`]
    /// left them, and the payment's amount as Klarna now authorizes it.
    pub fn store_edit(&self, edited: &EditedOrder, authorized: f64) {
        let mut tables = self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let order = edited.records["sale.order"][0].clone();
        let Some(order_id) = order["id"].as_i64() else {
            return;
        };
        let kept: Vec<Record> = edited.records["sale.order.line"]
            .as_array()
            .map(|l| l.iter().filter_map(|r| r.as_object().cloned()).collect())
            .unwrap_or_default();
        // The order's `order_line` says which lines it has; a removed line's record stays,
        // unreferenced.
        if let Some(lines) = tables.get_mut("sale.order.line") {
            for line in kept {
                let Some(id) = line["id"].as_i64() else {
                    continue;
                };
                lines.entry(id).or_default().extend(line);
            }
        }
        if let Some(stored) = tables
            .get_mut("sale.order")
            .and_then(|t| t.get_mut(&order_id))
        {
            for field in ["amount_untaxed", "amount_tax", "amount_total", "order_line"] {
                stored.insert(field.into(), order[field].clone());
            }
        }
        if let Some(source) = tables
            .get_mut("payment.transaction")
            .and_then(|t| t.get_mut(&edited.source_transaction))
        {
            source.insert("amount".into(), json!(authorized));
        }
    }
}

/// A short digest of the request: the same edit asked again gets the same key.
fn request_digest(body: &Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(body.to_string().as_bytes())[..20])
}
