//! What can go wrong in the widget, in words a shopper (and a developer) can act on.

use klarna_types::contract::{ApiError, ErrorCode};
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
    /// The gateway's answer did not have the contract's shape (a field missing or of
    /// another type): serde's words, naming the field.
    #[error("the payment service's answer could not be read: {0}")]
    Answer(String),
    /// The gateway's error: its `code` and `message`, and in `fields` what of the order
    /// Klarna would refuse (on `order_not_payable`). Boxed: the largest variant by far,
    /// and every `Result` of the widget would carry its size.
    #[error("{}", .0.message)]
    Gateway(Box<ApiError>),
}

impl WidgetError {
    /// The gateway's error code, when the gateway answered with one this build knows.
    pub fn gateway_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Gateway(error) => error.error_code(),
            _ => None,
        }
    }
}
