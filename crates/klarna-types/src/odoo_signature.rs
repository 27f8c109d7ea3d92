//! The Odoo contract's HMAC (docs/odoo-contract.md), written once for both ends.
//!
//! The gateway signs the payment updates it posts to the payment_klarna addon, and the
//! addon signs its calls to the gateway's admin API, with one shared secret:
//! `hex(HMAC-SHA256(secret, message))`, sent as `X-Klarna-Gateway-Signature` beside
//! `X-Klarna-Gateway-Timestamp`. An admin call's message also names its nonce, method,
//! path and `Idempotency-Key`, so that a signature can be neither moved to another
//! operation nor replayed under another key, and (the gateway taking each nonce once) not
//! replayed at all. The gateway and the sandbox's Odoo stand-in both use these functions,
//! so the two cannot drift apart. Checking the timestamp's age and the nonce's freshness
//! is the caller's job: these functions have no clock and no memory.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// `hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`: the signature of a payment update
/// the gateway posts to Odoo.
#[must_use]
pub fn sign_update(secret: &str, timestamp: i64, body: &[u8]) -> String {
    sign(secret, &[format!("{timestamp}.").as_bytes(), body])
}

/// One call from the Odoo addon to the gateway's admin API, as it is signed.
#[derive(Debug, Clone, Copy)]
pub struct AdminCall<'a> {
    /// Unix seconds (`X-Klarna-Gateway-Timestamp`).
    pub timestamp: i64,
    /// Unique per call (`X-Klarna-Gateway-Nonce`; the addon sends a fresh UUID).
    pub nonce: &'a str,
    pub method: &'a str,
    /// The path with its query string, as the gateway sees it.
    pub path: &'a str,
    /// The `Idempotency-Key` header; empty when the call has none.
    pub idempotency_key: &'a str,
    pub body: &'a [u8],
}

/// The signature of an admin call: `hex(HMAC-SHA256(secret, message))` over
/// `"{timestamp}\n{nonce}\n{METHOD} {path}\n{idempotency key}\n{body}"`.
/// The parts are joined by newlines, which no header value or path can hold, so no two
/// calls sign the same message.
#[must_use]
pub fn sign_admin(secret: &str, call: &AdminCall<'_>) -> String {
    let head = format!(
        "{}\n{}\n{} {}\n{}\n",
        call.timestamp, call.nonce, call.method, call.path, call.idempotency_key
    );
    sign(secret, &[head.as_bytes(), call.body])
}

/// How far a signed request's timestamp may be from the receiver's clock, in seconds.
pub const WINDOW_SECS: u64 = 300;

/// Whether a signed request's timestamp (unix seconds) is within [`WINDOW_SECS`] of `now`,
/// for any two numbers: nonsense such as `i64::MIN` is just far away, never an overflow.
#[must_use]
pub fn fresh(now: i64, timestamp: i64) -> bool {
    now.abs_diff(timestamp) <= WINDOW_SECS
}

/// Whether the signature a request carries is the one we computed, compared in constant
/// time so that the comparison does not tell an attacker how many leading bytes matched.
#[must_use]
pub fn verify(expected_hex: &str, given: &str) -> bool {
    bool::from(expected_hex.as_bytes().ct_eq(given.as_bytes()))
}

fn sign(secret: &str, parts: &[&[u8]]) -> String {
    // HMAC takes a key of any length, so this never fails; an empty signature would
    // match no header anyway.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed once with Python's `hmac.new(secret, message, hashlib.sha256).hexdigest()`,
    // so both sides are checked against a third implementation.
    #[test]
    fn updates_match_known_vectors() {
        assert_eq!(
            sign_update(
                "sandbox-odoo-secret",
                1_700_000_000,
                br#"{"event_id":"e1"}"#
            ),
            "0251ac124416e026fe67668a0d4b1a6d0da3ca418f81b3bb523f15c0abf9b942"
        );
        assert_eq!(
            sign_update("s", 1, b"{}"),
            "b253639bcd705ed1cda3073f66104f16988bd40272584dea7d0d345ae93e61cc"
        );
        assert_eq!(
            sign_update("", -5, b""),
            "31ef4f36ed1aa4a098cd1cdf4021a49a66b97bb520b1b61c0d94ba87d024a09b"
        );
    }

    const CALL: AdminCall<'static> = AdminCall {
        timestamp: 1,
        nonce: "n",
        method: "POST",
        path: "/admin/payments/x/captures",
        idempotency_key: "k",
        body: b"{}",
    };

    #[test]
    fn admin_calls_match_known_vectors() {
        let call = AdminCall {
            timestamp: 1_700_000_000,
            nonce: "3f2b8c1e-0d4a-4c8e-9a61-2d7f6b9f0a01",
            method: "POST",
            path: "/admin/payments/p1/captures",
            idempotency_key: "odoo-capture-P-S00042",
            body: br#"{"amount":100}"#,
        };
        assert_eq!(
            sign_admin("sandbox-odoo-secret", &call),
            "79502f1917505ffb5084fb011d85e76e8baf8922a86d05c7b2a3c7e3960dfc11"
        );
        let status = AdminCall {
            method: "GET",
            path: "/admin/status",
            idempotency_key: "",
            body: b"",
            ..CALL
        };
        assert_eq!(
            sign_admin("s", &status),
            "c007c780c05c62c9b46e2c3a357121afc3c7362babf6787eba892c2b1bda2db2"
        );
    }

    #[test]
    fn every_signed_part_changes_the_update_signature() {
        let base = sign_update("s", 1, b"{}");
        assert_eq!(base.len(), 64);
        assert_ne!(base, sign_update("t", 1, b"{}"));
        assert_ne!(base, sign_update("s", 2, b"{}"));
        assert_ne!(base, sign_update("s", 1, b"{ }"));
        assert_ne!(base, sign_update("s", 1, b"[]"));
    }

    #[test]
    fn every_signed_part_changes_the_admin_signature() {
        let base = sign_admin("s", &CALL);
        let changed = [
            sign_admin("t", &CALL),
            sign_admin(
                "s",
                &AdminCall {
                    timestamp: 2,
                    ..CALL
                },
            ),
            sign_admin("s", &AdminCall { nonce: "m", ..CALL }),
            sign_admin(
                "s",
                &AdminCall {
                    method: "PUT",
                    ..CALL
                },
            ),
            sign_admin(
                "s",
                &AdminCall {
                    path: "/admin/payments/x/refunds",
                    ..CALL
                },
            ),
            sign_admin(
                "s",
                &AdminCall {
                    idempotency_key: "",
                    ..CALL
                },
            ),
            sign_admin(
                "s",
                &AdminCall {
                    idempotency_key: "k2",
                    ..CALL
                },
            ),
            sign_admin(
                "s",
                &AdminCall {
                    body: b"{ }",
                    ..CALL
                },
            ),
            // An update signature never passes for an admin call.
            sign_update("s", 1, b"{}"),
        ];
        for (i, other) in changed.iter().enumerate() {
            assert_ne!(&base, other, "change {i}");
        }
    }

    #[test]
    fn the_window_holds_for_any_two_timestamps() {
        let now = 1_800_000_000;
        assert!(fresh(now, now));
        assert!(fresh(now, now - 300));
        assert!(fresh(now, now + 300));
        assert!(!fresh(now, now - 301));
        assert!(!fresh(now, now + 301));
        // Nonsense that once overflowed the subtraction: far away, not a panic.
        for nonsense in [i64::MIN, i64::MAX, -1, 0] {
            assert!(!fresh(now, nonsense), "{nonsense}");
        }
        assert!(!fresh(i64::MIN, i64::MAX));
    }

    #[test]
    fn verify_accepts_only_the_exact_signature() {
        let sig = sign_update("s", 1, b"{}");
        assert!(verify(&sig, &sig));
        assert!(!verify(&sig, ""));
        assert!(!verify(&sig, &sig[..63]));
        assert!(!verify(&sig, &sig.to_uppercase()));
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!verify(&sig, &String::from_utf8_lossy(&flipped)));
    }
}
