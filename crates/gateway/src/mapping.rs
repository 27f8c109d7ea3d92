//! How this installation maps an Odoo order to Klarna's: the options the gateway (and
//! `klarna-gateway map`) give `klarna_types::mapping`.

use klarna_types::mapping::MappingOptions;

use crate::phone;

/// The mapping options with the gateway's phone normaliser and the shop's fee products.
/// Klarna's callback URLs are added per request ([`crate::state::Gateway::mapping_options`]):
/// they carry a secret.
pub fn mapping_options(surcharge_codes: Vec<String>) -> MappingOptions {
    MappingOptions {
        locale: None,
        surcharge_codes,
        phone: Some(phone::e164),
        merchant_urls: None,
    }
}
