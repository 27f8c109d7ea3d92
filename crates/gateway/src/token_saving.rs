//! A returning shopper's saved Klarna, made at checkout: when Odoo's checkout transaction
//! asks to save the payment method (`tokenize`, Odoo's "Save my payment details"), the
//! session is made with Klarna's intent to save it, and once Klarna placed the order the
//! customer token is made from the same authorization and kept sealed — never in Odoo,
//! never in the browser. Charging and cancelling it later is [`crate::saved_klarna`]'s.

use klarna_types::klarna::{CustomerTokenRequest, OrderBody};
use zeroize::Zeroizing;

use crate::error::GatewayError;
use crate::odoo_update::SavedToken;
use crate::secrets::customer_token_name;
use crate::state::Gateway;
use crate::store::Transaction;
use crate::store::audit::Audit;
use crate::store::tokens::{NewToken, TokenState};

/// The intent of a checkout that saves the payment method.
pub const BUY_AND_TOKENIZE: &str = "buy_and_tokenize";

/// A saved Klarna just made: the token (wiped when dropped) and what Odoo may show.
pub struct Saved {
    token: Zeroizing<String>,
    payment_method: String,
}

/// Klarna's payment method type as a shopper reads it.
fn method_name(kind: &str) -> String {
    let label = match kind {
        "INVOICE" => "invoice",
        "CARD" => "card",
        "DIRECT_DEBIT" => "direct debit",
        "DIRECT_BANKING" => "bank transfer",
        "FIXED_AMOUNT" | "PIX" | "ACCOUNT" => "financing",
        _ => return "Klarna".into(),
    };
    format!("Klarna ({label})")
}

/// Makes the customer token of a checkout whose session was made to save it, once its order
/// is placed. A failure costs the shopper nothing (the order stands; only the saving is
/// lost), so it is logged and answered `None`.
pub(crate) async fn save(
    gw: &Gateway,
    authorization_token: &str,
    body: &OrderBody,
    order_reference: &str,
) -> Option<Saved> {
    if body.intent.as_deref() != Some(BUY_AND_TOKENIZE) {
        return None;
    }
    let request = CustomerTokenRequest {
        purchase_country: body.purchase_country.clone(),
        purchase_currency: body.purchase_currency.clone(),
        locale: body.locale.clone().unwrap_or_else(|| "en-US".into()),
        description: format!("Saved at checkout of {order_reference}"),
        intended_use: "SUBSCRIPTION".into(),
        billing_address: body.billing_address.clone(),
        customer: body.customer.clone(),
    };
    let created = match gw
        .klarna
        .create_customer_token(authorization_token, &request)
        .await
    {
        Ok(created) => created,
        Err(e) => {
            tracing::warn!(order = %order_reference, "Klarna did not save the payment method: {e}");
            return None;
        }
    };
    let token = Zeroizing::new(created.token_id);
    // What the shopper saved; the token works without this name.
    let payment_method = match gw.klarna.get_customer_token(&token).await {
        Ok(read) => method_name(&read.payment_method_type),
        Err(_) => "Klarna".into(),
    };
    Some(Saved {
        token,
        payment_method,
    })
}

/// Records a saved Klarna in the checkout's database transaction: sealed, under a new
/// opaque reference. Returns what Odoo is told.
pub(crate) async fn record(
    gw: &Gateway,
    tx: &mut crate::db::Tx,
    t: &Transaction,
    saved: &Saved,
) -> Result<SavedToken, GatewayError> {
    let reference = format!("kt_{}", crate::vault::random_secret().as_str());
    let sealed = gw
        .secrets
        .seal(&customer_token_name(&reference), saved.token.as_str())?;
    gw.db
        .insert_token(
            tx,
            NewToken {
                reference: &reference,
                sealed: &sealed,
                transaction_id: t.id,
                order_reference: &t.order_reference,
                currency: &t.currency,
                payment_method: &saved.payment_method,
            },
        )
        .await?;
    gw.db
        .audit(
            tx,
            Audit {
                transaction_id: Some(t.id),
                order_reference: Some(&t.order_reference),
                actor: "widget",
                action: "payment_method_saved",
                before: None,
                after: Some(TokenState::Active.as_str()),
                detail: Some(format!("{reference}: {}", saved.payment_method)),
            },
        )
        .await?;
    Ok(SavedToken {
        reference,
        payment_method: saved.payment_method.clone(),
    })
}
