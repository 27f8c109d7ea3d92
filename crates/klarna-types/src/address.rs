//! Odoo partner → Klarna address: the name split, the street line in the shape Klarna asks
//! for, and the business customer.
//!
//! Klarna Payments has one `street_address` whose regional format matters: the house
//! number comes first in the UK, Ireland, North America, Australia, New Zealand, France
//! and Luxembourg (`33 Cavendish Square`) and last in the rest of Europe
//! (`De Ruijterkade 7`). Flat, floor, staircase and c/o parts go to `street_address2`.
//! What the parser does not understand stays exactly as written.

use crate::klarna::{Address, Customer};
use crate::odoo::Partner;

/// Klarna's limit for every address field but `title` and `postal_code`.
pub const FIELD_MAX: usize = 99;

/// Countries where the house number is written before the street name.
const NUMBER_FIRST: &[&str] = &["GB", "IE", "US", "CA", "AU", "NZ", "FR", "LU"];

/// A street line taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Street {
    pub name: String,
    pub number: Option<String>,
    /// Flat, floor, apartment, c/o: what belongs in `street_address2`.
    pub extra: Vec<String>,
}

impl Street {
    /// The street line in `country`'s order.
    pub fn line(&self, country: &str) -> String {
        match &self.number {
            None => self.name.clone(),
            Some(n) if NUMBER_FIRST.contains(&country) => format!("{n} {}", self.name),
            Some(n) => format!("{} {n}", self.name),
        }
    }
}

/// Words that start an apartment/floor/unit part, lower-case, without trailing dots.
const UNIT_WORDS: &[&str] = &[
    "flat",
    "apt",
    "apartment",
    "suite",
    "ste",
    "unit",
    "room",
    "lgh",
    "lägenhet",
    "m",
    "lok",
    "lokal",
    "app",
    "appartement",
    "bte",
    "boîte",
    "bus",
    "whg",
    "wohnung",
    "stock",
    "etage",
    "étage",
    "og",
    "piso",
    "puerta",
    "esc",
    "escalera",
    "c/o",
    "co",
    "#",
];

fn is_house_number(token: &str) -> bool {
    let t = token.trim_end_matches(',');
    let mut chars = t.chars();
    // Starts with a digit; then digits, letters, and / - separators ("5a", "12-bis",
    // "84/92", "120/2/15"), but not a Spanish ordinal like "3º".
    chars.next().is_some_and(|c| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_alphanumeric() || c == '/' || c == '-')
        && !t.contains(['º', 'ª', '°'])
        && t.chars().filter(char::is_ascii_alphabetic).count() <= 4
}

fn is_unit_word(token: &str) -> bool {
    let word = token.trim_end_matches([',', '.', ':']).to_lowercase();
    UNIT_WORDS.contains(&word.as_str())
}

/// A Spanish/Italian floor-and-door part such as `3º B`, `2ª`, `1°`.
fn is_floor(token: &str) -> bool {
    token.contains(['º', 'ª', '°']) && token.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Takes a street apart into name, house number and unit parts. Returns `None` when it
/// cannot tell which part is the number; the caller then keeps the street as written.
pub fn parse_street(street: &str) -> Option<Street> {
    let street = street.split_whitespace().collect::<Vec<_>>().join(" ");
    // Comma-separated segments: "Flat 3, 10 Downing Street", "Calle Mayor, 5, 3º B".
    let mut segments: Vec<String> = street.split(',').map(|s| s.trim().to_owned()).collect();
    segments.retain(|s| !s.is_empty());
    let mut extra = Vec::new();
    let mut main = Vec::new();
    for segment in segments {
        let tokens: Vec<&str> = segment.split(' ').collect();
        if tokens
            .first()
            .is_some_and(|t| is_unit_word(t) || is_floor(t))
        {
            extra.push(segment.clone());
        } else {
            main.push(segment);
        }
    }
    // "Calle Mayor, 5": a segment that is only a number joins the name before it.
    let mut tokens: Vec<String> = main
        .iter()
        .flat_map(|s| s.split(' ').map(str::to_owned))
        .collect();
    // A unit part inside the line: "123 Main St Apt 4", "Storgatan 1 lgh 1101",
    // "ul. Marszałkowska 84/92 m. 5": everything from the unit word on is extra.
    if let Some(at) = tokens
        .iter()
        .enumerate()
        .skip(1)
        .find(|(i, t)| (is_unit_word(t) && tokens.get(i + 1).is_some()) || (is_floor(t) && *i > 1))
        .map(|(i, _)| i)
    {
        // "ul." at the start is a street-type prefix, not a unit; the guard skip(1)
        // keeps the first token in the name.
        let tail = tokens.split_off(at);
        extra.insert(0, tail.join(" "));
    }
    if tokens.len() < 2 {
        return None;
    }
    let number_first = is_house_number(&tokens[0]);
    let number_last = tokens.last().is_some_and(|t| is_house_number(t));
    let (number, name) = match (number_first, number_last) {
        (true, false) => (tokens[0].clone(), tokens[1..].join(" ")),
        (false, true) => {
            let n = tokens.len() - 1;
            (tokens[n].clone(), tokens[..n].join(" "))
        }
        // Both ends or neither look like a number: we cannot tell.
        _ => return None,
    };
    if !name.chars().any(char::is_alphabetic) {
        return None;
    }
    Some(Street {
        name,
        number: Some(number),
        extra,
    })
}

/// `street_address` and `street_address2` for a partner: Odoo's extended-address fields
/// when the shop has them, else the parsed `street`, else `street` as written.
pub fn street_lines(p: &Partner, country: &str) -> (Option<String>, Option<String>) {
    let street2 = p.street2.clone().filter(|s| !s.trim().is_empty());
    let join2 = |extra: Vec<String>| {
        let parts: Vec<String> = extra.into_iter().chain(street2.clone()).collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    };
    if let Some(name) = p.street_name.clone().filter(|s| !s.trim().is_empty()) {
        let street = Street {
            name,
            number: p.street_number.clone().filter(|s| !s.trim().is_empty()),
            extra: p
                .street_number2
                .clone()
                .filter(|s| !s.trim().is_empty())
                .into_iter()
                .collect(),
        };
        return (Some(street.line(country)), join2(street.extra));
    }
    let Some(street) = p.street.clone().filter(|s| !s.trim().is_empty()) else {
        return (None, street2);
    };
    match parse_street(&street) {
        Some(parsed) => {
            let line = parsed.line(country);
            (Some(line), join2(parsed.extra))
        }
        None => (Some(street.trim().to_owned()), street2),
    }
}

/// Odoo keeps one `name`; Klarna wants given and family names. The last word is the
/// family name and the rest the given name; a single word is the family name.
pub fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.rsplit_once(' ') {
        Some((given, family)) => (Some(given.to_owned()), Some(family.to_owned())),
        None if name.is_empty() => (None, None),
        None => (None, Some(name)),
    }
}

/// Klarna's `title` from Odoo's partner title (`res.partner.title`), when it has one.
pub fn title(odoo_title: &str) -> Option<&'static str> {
    match odoo_title
        .trim()
        .trim_end_matches('.')
        .to_lowercase()
        .as_str()
    {
        "mister" | "mr" => Some("Mr"),
        "madam" | "mrs" => Some("Mrs"),
        "miss" => Some("Miss"),
        "ms" => Some("Ms"),
        "doctor" | "dr" => Some("Dr"),
        "professor" | "prof" => Some("Prof"),
        _ => None,
    }
}

/// At most `max` characters, cut on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The company a partner belongs to, or the partner itself when it is one.
fn organization(p: &Partner) -> Option<String> {
    if p.is_company {
        Some(p.name.clone())
    } else {
        p.commercial_company_name
            .clone()
            .or_else(|| p.company_name.clone())
            .filter(|s| !s.trim().is_empty())
    }
}

/// The Klarna address of a partner. Phones are passed through `phone` (the gateway
/// normalises them to E.164 with a phone-number library).
pub fn address(p: &Partner, phone: &dyn Fn(&str, &str) -> Option<String>) -> Address {
    let country = p
        .country_code
        .clone()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let (given, family) = if p.is_company {
        (None, None)
    } else {
        split_name(&p.name)
    };
    let (street, street2) = street_lines(p, &country);
    let raw_phone = p.phone.clone().or_else(|| p.mobile.clone());
    Address {
        title: p.title.as_deref().and_then(title).map(str::to_owned),
        given_name: given,
        family_name: family,
        organization_name: organization(p).map(|o| truncate(&o, FIELD_MAX)),
        email: p.email.clone().map(|e| e.trim().to_owned()),
        street_address: street,
        street_address2: street2,
        postal_code: p.zip.clone().map(|z| z.trim().to_owned()),
        city: p.city.clone().map(|c| c.trim().to_owned()),
        region: p.state_code.clone(),
        phone: raw_phone
            .as_deref()
            .map(|raw| phone(raw, &country).unwrap_or_else(|| raw.trim().to_owned())),
        country: (!country.is_empty()).then_some(country),
        attention: None,
    }
}

/// `customer` for a business buyer: Klarna's B2B fields from Odoo's company and VAT.
pub fn customer(p: &Partner) -> Option<Customer> {
    // Only a business buyer gets a `customer` block.
    organization(p)?;
    Some(Customer {
        kind: Some("organization".into()),
        organization_registration_id: p.vat.clone().filter(|v| !v.trim().is_empty()),
        ..Customer::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(street: &str, country: &str) -> (String, Option<String>) {
        let p = Partner {
            street: Some(street.to_owned()),
            country_code: Some(country.to_owned()),
            ..Partner::named("Test Person")
        };
        let (a, b) = street_lines(&p, country);
        (a.expect("a street line"), b)
    }

    #[test]
    fn street_formats_real_shops_see() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("Hauptstraße 5a", "DE", "Hauptstraße 5a", None),
            ("Rue de la Paix 12", "FR", "12 Rue de la Paix", None),
            ("12 Rue de la Paix", "FR", "12 Rue de la Paix", None),
            ("12 Rue de la Paix", "BE", "Rue de la Paix 12", None),
            ("123 Main St Apt 4", "US", "123 Main St", Some("Apt 4")),
            ("Calle Mayor, 5, 3º B", "ES", "Calle Mayor 5", Some("3º B")),
            ("Kerkstraat 12-bis", "NL", "Kerkstraat 12-bis", None),
            (
                "Storgatan 1 lgh 1101",
                "SE",
                "Storgatan 1",
                Some("lgh 1101"),
            ),
            (
                "Flat 3, 10 Downing Street",
                "GB",
                "10 Downing Street",
                Some("Flat 3"),
            ),
            (
                "ul. Marszałkowska 84/92 m. 5",
                "PL",
                "ul. Marszałkowska 84/92",
                Some("m. 5"),
            ),
            ("De Ruijterkade 7", "NL", "De Ruijterkade 7", None),
            ("33 Cavendish Square", "GB", "33 Cavendish Square", None),
            (
                "Mariahilfer Straße 120/2/15",
                "AT",
                "Mariahilfer Straße 120/2/15",
                None,
            ),
        ];
        for (input, country, want, want2) in cases {
            let (got, got2) = line(input, country);
            assert_eq!(&got, want, "{input} in {country}");
            assert_eq!(
                got2.as_deref(),
                *want2,
                "{input} in {country}: street_address2"
            );
        }
    }

    #[test]
    fn what_is_not_understood_stays_as_written() {
        for s in [
            "Postfach",
            "Am Markt",
            "1 2 3",
            "Block 5 Estate 9",
            "Gårdsvägen",
        ] {
            assert_eq!(line(s, "SE").0, s, "{s}");
        }
    }

    #[test]
    fn odoo_street2_is_kept_and_joined_with_unit_parts() {
        let p = Partner {
            street: Some("Storgatan 1 lgh 1101".into()),
            street2: Some("c/o Andersson".into()),
            country_code: Some("SE".into()),
            ..Partner::named("Anna Andersson")
        };
        assert_eq!(
            street_lines(&p, "SE"),
            (
                Some("Storgatan 1".into()),
                Some("lgh 1101, c/o Andersson".into())
            )
        );
    }

    #[test]
    fn extended_address_fields_win_over_parsing() {
        let p = Partner {
            street: Some("whatever".into()),
            street_name: Some("Rue de la Paix".into()),
            street_number: Some("12".into()),
            street_number2: Some("Bât. B".into()),
            country_code: Some("FR".into()),
            ..Partner::named("Jeanne Martin")
        };
        assert_eq!(
            street_lines(&p, "FR"),
            (Some("12 Rue de la Paix".into()), Some("Bât. B".into()))
        );
    }

    #[test]
    fn names_split_on_the_last_word() {
        assert_eq!(
            split_name("Anna  Maria Svensson"),
            (Some("Anna Maria".into()), Some("Svensson".into()))
        );
        assert_eq!(split_name("Madonna"), (None, Some("Madonna".into())));
        assert_eq!(split_name("  "), (None, None));
    }

    #[test]
    fn organisations_keep_their_full_name_and_vat() {
        let p = Partner {
            is_company: true,
            vat: Some("SE556000016701".into()),
            country_code: Some("SE".into()),
            ..Partner::named("Acme Trading AB")
        };
        let a = address(&p, &|_, _| None);
        assert_eq!(a.organization_name.as_deref(), Some("Acme Trading AB"));
        assert_eq!(a.given_name, None);
        let c = customer(&p).expect("a business customer");
        assert_eq!(c.kind.as_deref(), Some("organization"));
        assert_eq!(
            c.organization_registration_id.as_deref(),
            Some("SE556000016701")
        );
    }
}
