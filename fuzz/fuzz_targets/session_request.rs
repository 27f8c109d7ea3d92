//! The widget's `POST /klarna/session` body, as the route reads it before any I/O: decoded
//! by `ApiJson` (`error::decode_json`), then `checkout::check_session_request`.

#![no_main]

use klarna_gateway::GatewayError;
use klarna_gateway::checkout::check_session_request;
use klarna_gateway::error::decode_json;
use klarna_types::contract::SessionRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = decode_json::<SessionRequest>(data);
    // The route's decoder accepts exactly what serde_json does, and the same value.
    let plain = serde_json::from_slice::<SessionRequest>(data);
    match (&decoded, &plain) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(GatewayError::InvalidRequest { field, reason }), Err(_)) => {
            assert!(!field.is_empty() && !reason.is_empty());
        }
        (got, want) => panic!("decode_json {got:?} but serde_json {want:?}"),
    }
    let Ok(req) = decoded else { return };
    // A decoded request re-encodes to itself.
    let again = serde_json::to_vec(&req).expect("strings encode");
    assert_eq!(
        decode_json::<SessionRequest>(&again).ok().as_ref(),
        Some(&req)
    );
    match check_session_request(&req) {
        Ok(()) => {
            for value in [&req.order_reference, &req.access_token] {
                assert!(!value.trim().is_empty());
                assert!(value.len() <= 255);
                assert!(!value.chars().any(char::is_control));
            }
        }
        Err(GatewayError::InvalidRequest { field, .. }) => {
            assert!(
                field == "order_reference" || field == "access_token",
                "{field}"
            );
        }
        Err(other) => panic!("{other:?}"),
    }
});
