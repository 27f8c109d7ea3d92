//! `Klarna-Signature` and the whole signed-webhook check (`check_signed`) over arbitrary
//! header values and body.
//!
//! Input: `content-type \n key-id \n signature \n body…` — each header line becomes a header
//! value the way the route reads it (`HeaderValue`, then `to_str`); a missing line is a
//! missing header.

#![no_main]

use hmac::{Hmac, Mac};
use http::HeaderValue;
use klarna_gateway::webhook_verify::{
    DEFAULT_HORIZON, Rejection, SignedHeaders, SigningKey, check_signed, parse_event,
    parse_signature, within_horizon,
};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

/// 2026-11-26T11:00:00Z, an hour after the seeds' events.
const NOW_MS: i64 = 1_795_690_800_000;

fn keys() -> [SigningKey; 2] {
    [
        SigningKey {
            id: "k1".into(),
            secret: "fuzz-secret-1".into(),
            revoked: false,
        },
        SigningKey {
            id: "k0".into(),
            secret: "fuzz-secret-0".into(),
            revoked: true,
        },
    ]
}

fn hmac(secret: &str, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// What the route's `headers.get(name).and_then(|v| v.to_str().ok())` would give.
fn header(line: Option<&[u8]>) -> Option<HeaderValue> {
    HeaderValue::from_bytes(line?).ok()
}

fn value(v: &Option<HeaderValue>) -> Option<&str> {
    v.as_ref().and_then(|v| v.to_str().ok())
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(4, |b| *b == b'\n');
    let content_type = header(lines.next());
    let key_id = header(lines.next());
    let signature = header(lines.next());
    let body = lines.next().unwrap_or_default();
    let headers = SignedHeaders {
        content_type: value(&content_type),
        key_id: value(&key_id),
        signature: value(&signature),
    };

    // A signature that parses is its 64 hex digits: it re-encodes to what was sent.
    if let Some(sent) = headers.signature {
        match parse_signature(sent) {
            Ok(raw) => {
                let digits = sent.trim();
                let digits = digits.strip_prefix("sha256=").unwrap_or(digits);
                assert_eq!(hex::encode(raw), digits.to_ascii_lowercase());
                assert_eq!(parse_signature(&hex::encode(raw)), Ok(raw));
                assert_eq!(
                    parse_signature(&format!("sha256={}", hex::encode_upper(raw))),
                    Ok(raw)
                );
            }
            Err(e) => assert_eq!(e, Rejection::MalformedSignature),
        }
    }

    let keys = keys();
    match check_signed(headers, body, &keys, NOW_MS, DEFAULT_HORIZON) {
        Ok((event, key_id)) => {
            // Only the live key's true signature over these very bytes gets in.
            assert_eq!(key_id, "k1");
            let sent = parse_signature(headers.signature.expect("signed")).expect("parsed");
            assert_eq!(sent, hmac("fuzz-secret-1", body));
            assert_eq!(parse_event(body).as_ref(), Ok(&event));
            assert_eq!(
                within_horizon(event.occurred_at, NOW_MS, DEFAULT_HORIZON),
                Ok(())
            );
        }
        Err((rejection, named)) => {
            // A refusal names the key claimed once one was, and only then.
            let before_key = matches!(
                rejection,
                Rejection::ContentType | Rejection::MissingHeader("Klarna-Signing-Key-Id")
            );
            assert_eq!(named.is_none(), before_key, "{rejection:?}");
            if let Some(named) = named {
                assert_eq!(Some(named.as_str()), headers.key_id);
            }
        }
    }

    // Signed right, the verdict is the body's own: its shape, then its time.
    let right = hex::encode(hmac("fuzz-secret-1", body));
    let signed = SignedHeaders {
        content_type: Some("application/json"),
        key_id: Some("k1"),
        signature: Some(&right),
    };
    let expected = parse_event(body)
        .and_then(|e| within_horizon(e.occurred_at, NOW_MS, DEFAULT_HORIZON).map(|()| e));
    match (
        check_signed(signed, body, &keys, NOW_MS, DEFAULT_HORIZON),
        expected,
    ) {
        (Ok((event, key_id)), Ok(want)) => assert_eq!((event, key_id.as_str()), (want, "k1")),
        (Err((got, named)), Err(want)) => {
            assert_eq!(got, want);
            assert_eq!(named.as_deref(), Some("k1"));
        }
        (got, want) => panic!("check_signed {got:?} but the body alone {want:?}"),
    }
    // The revoked key's true signature never passes.
    let revoked = hex::encode(hmac("fuzz-secret-0", body));
    let by_revoked = SignedHeaders {
        key_id: Some("k0"),
        signature: Some(&revoked),
        ..signed
    };
    assert_eq!(
        check_signed(by_revoked, body, &keys, NOW_MS, DEFAULT_HORIZON).err(),
        Some((Rejection::RevokedKey, Some("k0".into())))
    );
});
