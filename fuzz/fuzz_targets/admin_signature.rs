//! The admin API's Odoo signature: `parse_odoo_signature` (the headers, before the body is
//! read) and `OdooSignature::check` (the HMAC over the call), as `admin::odoo_signed` runs
//! them.
//!
//! Input: `signature \n timestamp \n nonce \n idempotency-key \n method \n uri \n body…`;
//! each header line becomes a header if it is a valid header value; a missing line is a
//! missing header. A method or URI that does not parse falls back to `POST /admin/status`.

#![no_main]

use http::{HeaderMap, HeaderValue, Method, Uri};
use klarna_gateway::admin::{OdooSignature, parse_odoo_signature};
use klarna_types::odoo_signature::{AdminCall, fresh, sign_admin};
use libfuzzer_sys::fuzz_target;

/// 2023-11-14T22:13:20Z, the seeds' timestamp.
const NOW_S: i64 = 1_700_000_000;
const SECRET: &str = "sandbox-odoo-secret";
const MISMATCH: &str = "X-Klarna-Gateway-Signature does not match the request";

const HEADERS: [&str; 4] = [
    "x-klarna-gateway-signature",
    "x-klarna-gateway-timestamp",
    "x-klarna-gateway-nonce",
    "idempotency-key",
];

fn headers_of(signed: &OdooSignature) -> HeaderMap {
    let mut h = HeaderMap::new();
    let values = [
        signed.signature.clone(),
        signed.timestamp.to_string(),
        signed.nonce.clone(),
        signed.idempotency_key.clone(),
    ];
    for (name, value) in HEADERS.iter().zip(values) {
        h.insert(
            *name,
            HeaderValue::from_str(&value).expect("accepted values are header values"),
        );
    }
    h
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(7, |b| *b == b'\n');
    let mut headers = HeaderMap::new();
    for name in HEADERS {
        if let Some(v) = lines.next().and_then(|l| HeaderValue::from_bytes(l).ok()) {
            headers.insert(name, v);
        }
    }
    let method = lines
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or(Method::POST);
    let uri = lines
        .next()
        .and_then(|u| Uri::try_from(u).ok())
        .unwrap_or_else(|| Uri::from_static("/admin/status"));
    let body = lines.next().unwrap_or_default();

    let signature_header = headers.get(HEADERS[0]).and_then(|v| v.to_str().ok());
    let signed = match parse_odoo_signature(&headers, NOW_S) {
        Ok(None) => {
            // Only a request without a readable signature goes on to the bearer token.
            assert!(signature_header.is_none());
            return;
        }
        Err(reason) => {
            assert!(signature_header.is_some());
            assert!(reason.starts_with("X-Klarna-Gateway-"), "{reason}");
            return;
        }
        Ok(Some(signed)) => signed,
    };
    assert_eq!(Some(signed.signature.as_str()), signature_header);
    assert!(fresh(NOW_S, signed.timestamp));
    assert!((16..=64).contains(&signed.nonce.len()));
    assert!(
        signed
            .nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    );
    // What was accepted re-encodes to headers that parse to the same claim.
    assert_eq!(
        parse_odoo_signature(&headers_of(&signed), NOW_S),
        Ok(Some(signed.clone()))
    );

    // The check passes exactly when the signature is the secret's over this call.
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |p| p.as_str());
    let call = AdminCall {
        timestamp: signed.timestamp,
        nonce: &signed.nonce,
        method: method.as_str(),
        path,
        idempotency_key: &signed.idempotency_key,
        body,
    };
    let expected = sign_admin(SECRET, &call);
    let verdict = signed.check(SECRET, &method, &uri, body);
    assert_eq!(
        verdict.is_ok(),
        signed.signature.trim() == expected,
        "{verdict:?}"
    );
    if let Err(reason) = verdict {
        assert_eq!(reason, MISMATCH);
    }
    // Signed right it passes; under another secret it does not.
    let right = OdooSignature {
        signature: expected,
        ..signed
    };
    assert_eq!(right.check(SECRET, &method, &uri, body), Ok(()));
    assert_eq!(
        right.check("another-secret", &method, &uri, body),
        Err(MISMATCH)
    );
});
