//! Calls to the gateway's widget API, with the request and response types that the
//! gateway itself uses (`klarna_types::contract`).

use gloo_net::http::Request;
use klarna_types::contract::{
    ApiError, AuthorizeRequest, AuthorizeResponse, SessionRequest, SessionResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::WidgetConfig;
use crate::error::WidgetError;

async fn post<B: Serialize, T: DeserializeOwned>(url: String, body: &B) -> Result<T, WidgetError> {
    let response = Request::post(&url)
        .json(body)
        .map_err(|_| WidgetError::Network)?
        .send()
        .await
        .map_err(|_| WidgetError::Network)?;
    if response.ok() {
        return response.json().await.map_err(|_| WidgetError::Network);
    }
    Err(match response.json::<ApiError>().await {
        Ok(e) => WidgetError::Gateway {
            code: e.code,
            message: e.message,
        },
        Err(_) => WidgetError::Network,
    })
}

pub async fn create_session(cfg: &WidgetConfig) -> Result<SessionResponse, WidgetError> {
    post(
        format!("{}/klarna/session", cfg.gateway_url),
        &SessionRequest {
            order_reference: cfg.order_reference.clone(),
            access_token: cfg.access_token.clone(),
        },
    )
    .await
}

pub async fn authorize(
    cfg: &WidgetConfig,
    session_id: &str,
    authorization_token: &str,
) -> Result<AuthorizeResponse, WidgetError> {
    post(
        format!("{}/klarna/authorize", cfg.gateway_url),
        &AuthorizeRequest {
            session_id: session_id.to_owned(),
            authorization_token: authorization_token.to_owned(),
        },
    )
    .await
}
