//! What can go wrong in the widget, in words a shopper (and a developer) can act on.

use klarna_types::contract::ErrorCode;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WidgetError {
    #[error("the widget is missing its {0} setting")]
    MissingSetting(&'static str),
    #[error("Klarna could not be loaded")]
    SdkLoad,
    #[error("Klarna took too long to answer")]
    Timeout,
    #[error("Klarna reported {name}: {message}")]
    Sdk { name: String, message: String },
    #[error("the payment service could not be reached")]
    Network,
    /// The gateway's `{code, message, fields}`; `fields` names what of the order Klarna
    /// would refuse (on `order_not_payable`).
    #[error("{message}")]
    Gateway {
        code: String,
        message: String,
        fields: Vec<String>,
    },
}

impl WidgetError {
    /// The gateway's error code, when the gateway answered with one this build knows.
    pub fn gateway_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Gateway { code, .. } => ErrorCode::parse(code),
            _ => None,
        }
    }
}
