//! JSON refusals that quote nothing of what was sent.

/// What is wrong with a JSON body, in words that quote none of it. serde's own messages
/// repeat the offending value (`invalid type: string "…"`) or key, and a refusal never
/// echoes what was sent: it may be a secret pasted into the wrong field, or a payload
/// meant to be reflected. What serde says is expected is ours, and is kept.
pub fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    // A value already parsed (`from_value`) has no position.
    let at = if e.line() == 0 {
        String::new()
    } else {
        format!(" at line {} column {}", e.line(), e.column())
    };
    match e.classify() {
        Category::Io | Category::Syntax => format!("not valid JSON{at}"),
        Category::Eof => format!("the JSON ends too early{at}"),
        Category::Data => {
            let message = e.to_string();
            let what = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            // `missing field `x`` names one of our fields, never the sender's.
            if what.starts_with("missing field") {
                return format!("{what}{at}");
            }
            let kind = what.split([':', '`', '"', ',']).next().unwrap_or("").trim();
            let expected = what.find(", expected ").map_or("", |i| &what[i..]);
            format!("{kind}{expected}{at}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        amount: u64,
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        Capture,
    }

    fn problem(body: &str) -> String {
        describe(&serde_json::from_str::<Shape>(body).expect_err("refused"))
    }

    #[test]
    fn no_part_of_the_body_is_repeated() {
        let secret = "sk_live_SECRET";
        for body in [
            format!(r#"{{"amount": "{secret}", "kind": "Capture"}}"#),
            format!(r#"{{"amount": 1, "kind": "{secret}"}}"#),
            format!(r#"{{"amount": 1, "kind": "Capture", "{secret}": 1}}"#),
            format!(r#"{{"amount": 1, "kind": "Capture"}} {secret}"#),
            format!(r#"{{"{secret}"#),
            format!(r#"[1, "{secret}"]"#),
        ] {
            let text = problem(&body);
            assert!(!text.contains("SECRET"), "{body} → {text}");
            assert!(text.contains("at line 1 column"), "{text}");
        }
    }

    #[test]
    fn what_was_expected_is_still_said() {
        assert_eq!(
            problem(r#"{"amount": "x", "kind": "Capture"}"#),
            "invalid type, expected u64 at line 1 column 14"
        );
        assert!(problem(r#"{"kind": "Capture"}"#).starts_with("missing field `amount`"));
        assert!(
            problem(r#"{"amount": 1, "kind": "Capture", "zz": 1}"#)
                .starts_with("unknown field, expected `amount` or `kind`")
        );
        assert!(problem(r#"{"amount": 1,"#).starts_with("the JSON ends too early"));
        assert!(problem(r#"{"amount": 1 x"#).starts_with("not valid JSON"));
    }
}
