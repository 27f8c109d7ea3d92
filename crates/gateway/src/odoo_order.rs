//! An Odoo sale order as the mapping reads it ([`OrderDocument`]), gathered from any
//! source of Odoo records: Odoo itself over JSON-RPC ([`crate::odoo::OdooClient`]), or
//! the records the addon sends with an order edit ([`Snapshot`]) — read in Odoo's own
//! transaction, before it commits, so that a refused edit can still be rolled back.
//! One reader for both: an edited order is mapped exactly as a new one.
//!
//! Which fields of which model it reads is `klarna_types::odoo_fields`; the addon's
//! `const.py` lists the same (`KLARNA_ORDER_FIELDS`), and a test holds the two equal.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use klarna_types::odoo::{
    AttributeValue, Many2one, OdooCurrency, OrderDocument, Partner, Partners, Product, Reward,
    SaleOrder, SaleOrderLine, Tax,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use klarna_types::odoo_fields::{
    ATTRIBUTE_VALUE_FIELDS, CURRENCY_FIELDS, LINE_FIELDS, ORDER_FIELDS, PARTNER_FIELDS,
    PRODUCT_FIELDS, PROGRAM_FIELDS, REWARD_FIELDS, STATE_FIELDS, TAX_FIELDS,
};

use crate::odoo::{OdooClient, OdooError, decode, records};

/// Where Odoo records come from.
pub(crate) trait Records {
    /// The `sale.order` named `reference` (its `ORDER_FIELDS`), decoded.
    async fn find_order(&self, reference: &str) -> Result<Option<SaleOrder>, OdooError>;
    /// `read` of `ids` of `model`: each record's `id` and `fields`.
    async fn read(
        &self,
        model: &str,
        ids: &BTreeSet<i64>,
        fields: &[&str],
    ) -> Result<Vec<Map<String, Value>>, OdooError>;
    /// Which of `wanted` exist on `model` in this Odoo (optional modules add some).
    async fn existing(
        &self,
        model: &'static str,
        wanted: &[&'static str],
    ) -> Result<Vec<&'static str>, OdooError>;
}

/// `product.template.attribute.value` records by id.
async fn attribute_values(
    src: &impl Records,
    ids: &BTreeSet<i64>,
) -> Result<HashMap<i64, AttributeValue>, OdooError> {
    let model = "product.template.attribute.value";
    src.read(model, ids, ATTRIBUTE_VALUE_FIELDS)
        .await?
        .into_iter()
        .map(|r| decode::<AttributeValue>(model, r).map(|v| (v.id, v)))
        .collect()
}

/// Each loyalty reward with its program's type, when sale_loyalty is installed.
async fn rewards(
    src: &impl Records,
    ids: &BTreeSet<i64>,
) -> Result<HashMap<i64, Reward>, OdooError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rewards = src.read("loyalty.reward", ids, REWARD_FIELDS).await?;
    let program_ids: BTreeSet<i64> = rewards
        .iter()
        .filter_map(|r| many2one_id(r.get("program_id")))
        .collect();
    let programs = by_id(
        src.read("loyalty.program", &program_ids, PROGRAM_FIELDS)
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

/// The sale order named `reference` with everything the mapping needs, or `None` —
/// when `admit` accepts the order record itself — checked on the
/// first read, before the ten or so that complete the document: a caller who may not
/// see the order (a wrong access token) costs one Odoo call, as an unknown order does,
/// and cannot tell the two apart by the time the answer takes.
pub(crate) async fn read_document(
    src: &impl Records,
    reference: &str,
    admit: impl FnOnce(&SaleOrder) -> bool,
) -> Result<Option<OrderDocument>, OdooError> {
    let Some(order) = src.find_order(reference).await? else {
        return Ok(None);
    };
    if !admit(&order) {
        return Ok(None);
    }
    let line_ids: BTreeSet<i64> = order.order_line.iter().copied().collect();
    let line_fields = src.existing("sale.order.line", LINE_FIELDS).await?;
    // The raw rows still name what the typed line does not hold (reward, unit,
    // attribute values); both are kept side by side.
    let raw_lines = src.read("sale.order.line", &line_ids, &line_fields).await?;
    let product_ids: BTreeSet<i64> = raw_lines
        .iter()
        .filter_map(|l| many2one_id(l.get("product_id")))
        .collect();
    let raw_products = src
        .read("product.product", &product_ids, PRODUCT_FIELDS)
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
    let values = attribute_values(src, &value_ids).await?;
    let values_of = |ids: BTreeSet<i64>| -> Vec<AttributeValue> {
        ids.iter()
            .filter_map(|id| values.get(id))
            .cloned()
            .collect()
    };
    let products: HashMap<i64, Product> = raw_products
        .into_iter()
        .map(|p| {
            let attribute_values = values_of(ids_of(p.get("product_template_attribute_value_ids")));
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
    let rewards = rewards(src, &reward_ids).await?;

    let mut lines = raw_lines
        .into_iter()
        .map(|raw| {
            let reward = many2one_id(raw.get("reward_id")).and_then(|id| rewards.get(&id).cloned());
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
    let mut taxes: Vec<Tax> = read_as(src, "account.tax", &tax_ids, TAX_FIELDS).await?;
    let children: BTreeSet<i64> = taxes
        .iter()
        .flat_map(|t| t.children_tax_ids.iter().copied())
        .filter(|id| !tax_ids.contains(id))
        .collect();
    taxes.extend(read_as::<Tax>(src, "account.tax", &children, TAX_FIELDS).await?);
    tax_ids.extend(children);

    let currency_id = order.currency_id.id();
    let currency = read_as::<OdooCurrency>(
        src,
        "res.currency",
        &BTreeSet::from([currency_id]),
        CURRENCY_FIELDS,
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
    let partner_fields = src.existing("res.partner", PARTNER_FIELDS).await?;
    let raw_partners = src
        .read("res.partner", &partner_ids, &partner_fields)
        .await?;
    let state_ids: BTreeSet<i64> = raw_partners
        .iter()
        .filter_map(|p| many2one_id(p.get("state_id")))
        .collect();
    let states = by_id(
        src.read("res.country.state", &state_ids, STATE_FIELDS)
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
    src: &impl Records,
    model: &str,
    ids: &BTreeSet<i64>,
    fields: &[&str],
) -> Result<Vec<T>, OdooError> {
    src.read(model, ids, fields)
        .await?
        .into_iter()
        .map(|r| decode(model, r))
        .collect()
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
impl Records for OdooClient {
    async fn find_order(&self, reference: &str) -> Result<Option<SaleOrder>, OdooError> {
        let found = self
            .execute_kw(
                "sale.order",
                "search_read",
                json!([[["name", "=", reference]]]),
                json!({"fields": ORDER_FIELDS, "limit": 1}),
            )
            .await?;
        records(found, "sale.order")?
            .into_iter()
            .next()
            .map(|r| decode("sale.order", r))
            .transpose()
    }

    async fn read(
        &self,
        model: &str,
        ids: &BTreeSet<i64>,
        fields: &[&str],
    ) -> Result<Vec<Map<String, Value>>, OdooError> {
        self.read_records(model, ids, fields).await
    }

    async fn existing(
        &self,
        model: &'static str,
        wanted: &[&'static str],
    ) -> Result<Vec<&'static str>, OdooError> {
        self.existing_fields(model, wanted).await
    }
}

impl OdooClient {
    /// The sale order named `reference` with everything the mapping needs, or `None`.
    pub async fn read_order(&self, reference: &str) -> Result<Option<OrderDocument>, OdooError> {
        read_document(self, reference, |_| true).await
    }

    /// [`Self::read_order`], when `admit` accepts the order record itself
    /// ([`read_document`]).
    pub async fn read_order_if(
        &self,
        reference: &str,
        admit: impl FnOnce(&SaleOrder) -> bool,
    ) -> Result<Option<OrderDocument>, OdooError> {
        read_document(self, reference, admit).await
    }
}

/// The records of one sale order as the addon read them in Odoo's own transaction, by
/// model: each as Odoo's `read` answers it, its `id` and the fields of [`MODEL_FIELDS`](klarna_types::odoo_fields::MODEL_FIELDS)
/// (those this Odoo has). The addon sends them with an order edit because the gateway
/// cannot see an edit Odoo has not committed — and Odoo commits it only once Klarna
/// accepted it.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct Snapshot(BTreeMap<String, Vec<Map<String, Value>>>);

impl Snapshot {
    fn rows(&self, model: &str) -> &[Map<String, Value>] {
        self.0.get(model).map_or(&[], Vec::as_slice)
    }
}

fn missing(what: String) -> OdooError {
    OdooError::Shape(format!("the order's records hold {what}"))
}

impl Records for Snapshot {
    async fn find_order(&self, reference: &str) -> Result<Option<SaleOrder>, OdooError> {
        self.rows("sale.order")
            .iter()
            .find(|r| r.get("name").and_then(Value::as_str) == Some(reference))
            .map(|r| decode("sale.order", r.clone()))
            .transpose()
    }

    async fn read(
        &self,
        model: &str,
        ids: &BTreeSet<i64>,
        fields: &[&str],
    ) -> Result<Vec<Map<String, Value>>, OdooError> {
        let rows = self.rows(model);
        ids.iter()
            .map(|id| {
                let row = rows
                    .iter()
                    .find(|r| r.get("id").and_then(Value::as_i64) == Some(*id))
                    .ok_or_else(|| missing(format!("no {model} {id}")))?;
                std::iter::once("id")
                    .chain(fields.iter().copied())
                    .map(|f| {
                        row.get(f)
                            .map(|v| (f.to_owned(), v.clone()))
                            .ok_or_else(|| missing(format!("{model} {id} without its {f}")))
                    })
                    .collect()
            })
            .collect()
    }

    /// The fields the addon sent: those of [`MODEL_FIELDS`](klarna_types::odoo_fields::MODEL_FIELDS) that this Odoo has.
    async fn existing(
        &self,
        model: &'static str,
        wanted: &[&'static str],
    ) -> Result<Vec<&'static str>, OdooError> {
        Ok(match self.rows(model).first() {
            Some(row) => wanted
                .iter()
                .copied()
                .filter(|f| row.contains_key(*f))
                .collect(),
            None => wanted.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use klarna_types::odoo_fields::MODEL_FIELDS;

    use super::*;

    /// The addon sends what the reader reads: `const.py`'s `KLARNA_ORDER_FIELDS` is
    /// [`MODEL_FIELDS`](klarna_types::odoo_fields::MODEL_FIELDS), model for model, field for field.
    #[test]
    fn the_addon_sends_the_fields_the_reader_reads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../odoo/payment_klarna/const.py"
        );
        let text = std::fs::read_to_string(path).expect("const.py");
        let start = text
            .find("KLARNA_ORDER_FIELDS = {")
            .expect("KLARNA_ORDER_FIELDS in const.py");
        let block = &text[start..];
        let block = &block[block.find('{').expect("{")..=block.find("\n}").expect("}") + 1];
        // A Python literal of strings and lists: JSON once quoted and without the last commas.
        let json_text = block
            .replace('\'', "\"")
            .replace(",\n    ]", "\n    ]")
            .replace(",\n}", "\n}");
        let addon: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&json_text).expect("KLARNA_ORDER_FIELDS reads as JSON");
        let ours: BTreeMap<String, Vec<String>> = MODEL_FIELDS
            .iter()
            .map(|(m, f)| ((*m).to_owned(), f.iter().map(|f| (*f).to_owned()).collect()))
            .collect();
        assert_eq!(addon, ours);
    }

    fn snapshot(value: Value) -> Snapshot {
        serde_json::from_value(value).expect("snapshot")
    }

    #[tokio::test]
    async fn a_snapshot_answers_reads_and_names_what_it_lacks() {
        let s = snapshot(json!({
            "res.partner": [
                {"id": 7, "name": "Ada", "email": "ada@example.com", "extra": 1},
                {"id": 8, "name": "Bob"},
            ],
        }));
        let rows = s
            .read("res.partner", &BTreeSet::from([7]), &["name", "email"])
            .await
            .expect("read");
        assert_eq!(
            Value::from(rows),
            json!([{"id": 7, "name": "Ada", "email": "ada@example.com"}])
        );
        let lacking = s
            .read("res.partner", &BTreeSet::from([9]), &["name"])
            .await
            .expect_err("no partner 9");
        assert!(
            lacking.to_string().contains("no res.partner 9"),
            "{lacking}"
        );
        let without = s
            .read("res.partner", &BTreeSet::from([8]), &["email"])
            .await
            .expect_err("partner 8 without its email");
        assert!(
            without
                .to_string()
                .contains("res.partner 8 without its email"),
            "{without}"
        );
        // The fields this Odoo has are those the addon sent (an optional module's are
        // absent from its rows).
        assert_eq!(
            s.existing("res.partner", &["name", "email", "mobile"])
                .await
                .expect("existing"),
            vec!["name", "email"]
        );
        assert!(s.find_order("S1").await.expect("find").is_none());
    }
}
