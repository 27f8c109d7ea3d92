//! The Odoo contract's HMAC (docs/odoo-contract.md), written once for both ends.
//!
//! The gateway signs the payment updates it posts to the payment_klarna addon, and the
//! addon signs its calls to the gateway's admin API, with one shared secret:
//! `hex(HMAC-SHA256(secret, message))`, sent as `X-Klarna-Gateway-Signature` beside
//! `X-Klarna-Gateway-Timestamp`. The admin message also names the method and path, so a
//! signature cannot be moved to another operation. The gateway and the sandbox's Odoo
//! stand-in both use these functions, so the two cannot drift apart. Checking the
//! timestamp's age is the caller's job: these functions have no clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// `hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`: the signature of a payment update
/// the gateway posts to Odoo.
#[must_use]
pub fn sign_update(secret: &str, timestamp: i64, body: &[u8]) -> String {
    sign(secret, &[format!("{timestamp}.").as_bytes(), body])
}

/// `hex(HMAC-SHA256(secret, "{timestamp}.{METHOD} {path}.{body}"))`: the signature of a
/// call from the Odoo addon to the gateway's admin API.
#[must_use]
pub fn sign_admin(secret: &str, timestamp: i64, method: &str, path: &str, body: &[u8]) -> String {
    sign(
        secret,
        &[format!("{timestamp}.{method} {path}.").as_bytes(), body],
    )
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

    #[test]
    fn admin_calls_match_a_known_vector() {
        assert_eq!(
            sign_admin(
                "sandbox-odoo-secret",
                1_700_000_000,
                "POST",
                "/admin/v1/payments/p1/capture",
                br#"{"amount":100}"#
            ),
            "8966c0592193dae38abdf02af060fa795d1654020671fd512f7538e403c29037"
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
        let base = sign_admin("s", 1, "POST", "/admin/payments/x/captures", b"{}");
        assert_ne!(
            base,
            sign_admin("t", 1, "POST", "/admin/payments/x/captures", b"{}")
        );
        assert_ne!(
            base,
            sign_admin("s", 2, "POST", "/admin/payments/x/captures", b"{}")
        );
        assert_ne!(
            base,
            sign_admin("s", 1, "PUT", "/admin/payments/x/captures", b"{}")
        );
        assert_ne!(
            base,
            sign_admin("s", 1, "POST", "/admin/payments/x/refunds", b"{}")
        );
        assert_ne!(
            base,
            sign_admin("s", 1, "POST", "/admin/payments/x/captures", b"{ }")
        );
        // An update signature never passes for an admin call with the same body.
        assert_ne!(sign_update("s", 1, b"{}"), base);
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
