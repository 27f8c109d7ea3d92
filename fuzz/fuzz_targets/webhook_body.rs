//! The webhook bodies: signed events (`parse_event`), classic notifications
//! (`parse_classic`) and Klarna's authorization callback (`parse_authorization_callback`),
//! over arbitrary bytes.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use klarna_gateway::webhook_verify::{
    AUTHORIZATION_CALLBACK, Event, Kind, id_like, kind_of, parse_authorization_callback,
    parse_classic, parse_event,
};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// 2026-11-26T11:00:00Z.
const NOW_MS: i64 = 1_795_690_800_000;

/// What every accepted event holds, whichever channel it came by.
fn well_formed(e: &Event) {
    assert!(id_like(&e.event_id), "{e:?}");
    assert!(id_like(&e.order_id), "{e:?}");
    assert_eq!(kind_of(&e.event_type), Some(e.kind), "{e:?}");
}

fn rfc3339(ms: i64) -> String {
    let ms = u64::try_from(ms).expect("parsed times are after the epoch");
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = parse_event(data) {
        well_formed(&e);
        assert!(!matches!(
            e.kind,
            Kind::FraudAccepted
                | Kind::FraudRejected
                | Kind::FraudStopped
                | Kind::AuthorizationCallback
        ));
        // It re-encodes: the event written out again parses to itself.
        let again = json!({
            "metadata": {"event_type": e.event_type, "event_id": e.event_id, "occurred_at": rfc3339(e.occurred_at)},
            "payload": {"order_id": e.order_id},
        })
        .to_string();
        assert_eq!(parse_event(again.as_bytes()), Ok(e));
    }
    if let Ok(e) = parse_classic(data, NOW_MS) {
        well_formed(&e);
        assert_ne!(e.kind, Kind::AuthorizationCallback);
        assert!(e.event_id.starts_with("classic-"));
        // Its id is its bytes': the same bytes are the same notification.
        assert_eq!(
            parse_classic(data, NOW_MS + 1).map(|a| a.event_id),
            Ok(e.event_id)
        );
    }
    if let Ok(e) = parse_authorization_callback(data, NOW_MS) {
        well_formed(&e);
        assert_eq!(
            (e.kind, e.event_type.as_str(), e.occurred_at),
            (Kind::AuthorizationCallback, AUTHORIZATION_CALLBACK, NOW_MS)
        );
        assert!(e.event_id.starts_with("authcb-"));
    }
});
