//! Phone numbers to E.164 (`+46701234567`), with the libphonenumber metadata of the
//! `phonenumber` crate and the partner's country for numbers written locally.

use phonenumber::Mode;
use phonenumber::country::Id;

/// The E.164 form of `raw` for a partner in `country` (ISO 3166 alpha-2), or `None` when
/// it is not a valid number there (the mapping then passes it on as written).
pub fn e164(raw: &str, country: &str) -> Option<String> {
    let id: Option<Id> = country.parse().ok();
    let number = phonenumber::parse(id, raw).ok()?;
    phonenumber::is_valid(&number).then(|| number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn local_and_international_numbers_become_e164() {
        assert_eq!(e164("070-123 45 67", "SE").as_deref(), Some("+46701234567"));
        assert_eq!(e164("+43 1 5123456", "AT").as_deref(), Some("+4315123456"));
        assert_eq!(e164("030 1234567", "DE").as_deref(), Some("+49301234567"));
        assert_eq!(
            e164("(202) 555-0143", "US").as_deref(),
            Some("+12025550143")
        );
        assert_eq!(e164("not a phone", "SE"), None);
        assert_eq!(e164("12", "SE"), None);
    }
}
