//! Everything Klarna would refuse, found before anything is sent: the market (purchase
//! country ↔ currency ↔ locale), required address fields per country, postal codes in the
//! country's shape, field lengths, and national identification numbers with their check
//! digits. Each failure names the field path Klarna would name.

use crate::klarna::{Address, OrderBody};
use crate::rules::RuleViolation;

/// Klarna's markets: purchase country, its one currency, the locales it serves there.
/// From Klarna's "purchase countries, currencies and locales" page.
pub const MARKETS: &[(&str, &str, &[&str])] = &[
    ("AT", "EUR", &["de-AT", "en-AT"]),
    ("AU", "AUD", &["en-AU"]),
    ("BE", "EUR", &["nl-BE", "fr-BE", "en-BE"]),
    ("CA", "CAD", &["en-CA", "fr-CA"]),
    ("CH", "CHF", &["de-CH", "fr-CH", "it-CH", "en-CH"]),
    ("CZ", "CZK", &["cs-CZ", "en-CZ"]),
    ("DE", "EUR", &["de-DE", "en-DE"]),
    ("DK", "DKK", &["da-DK", "en-DK"]),
    ("ES", "EUR", &["es-ES", "en-ES"]),
    ("FI", "EUR", &["fi-FI", "sv-FI", "en-FI"]),
    ("FR", "EUR", &["fr-FR", "en-FR"]),
    ("GB", "GBP", &["en-GB"]),
    ("GR", "EUR", &["el-GR", "en-GR"]),
    ("HU", "HUF", &["hu-HU", "en-HU"]),
    ("IE", "EUR", &["en-IE"]),
    ("IT", "EUR", &["it-IT", "en-IT"]),
    ("MX", "MXN", &["en-MX", "es-MX"]),
    ("NL", "EUR", &["nl-NL", "en-NL"]),
    ("NO", "NOK", &["nb-NO", "en-NO"]),
    ("NZ", "NZD", &["en-NZ"]),
    ("PL", "PLN", &["pl-PL", "en-PL"]),
    ("PT", "EUR", &["pt-PT", "en-PT"]),
    ("RO", "RON", &["ro-RO", "en-RO"]),
    ("SE", "SEK", &["sv-SE", "en-SE"]),
    ("SK", "EUR", &["sk-SK", "en-SK"]),
    ("US", "USD", &["en-US", "es-US"]),
];

pub fn market(country: &str) -> Option<(&'static str, &'static [&'static str])> {
    MARKETS
        .iter()
        .find(|(c, _, _)| c.eq_ignore_ascii_case(country))
        .map(|(_, currency, locales)| (*currency, *locales))
}

/// The Klarna locale for an Odoo language in a purchase country: the language when
/// Klarna serves it there, else the country's first locale.
pub fn locale_for(odoo_lang: Option<&str>, country: &str) -> Option<String> {
    let (_, locales) = market(country)?;
    let lang = odoo_lang
        .and_then(|l| l.split(['_', '-']).next())
        .map(str::to_ascii_lowercase);
    let Some(lang) = lang else {
        return Some(locales[0].to_owned());
    };
    // Odoo's Norwegian is `nb_NO`, and its plain `no` means the same.
    let lang = if lang == "no" { "nb".to_owned() } else { lang };
    Some(
        locales
            .iter()
            .find(|l| l.starts_with(&format!("{lang}-")))
            .unwrap_or(&locales[0])
            .to_string(),
    )
}

/// Postal code shapes: `N` a digit, `A` a letter, anything else itself. Spaces in the
/// input are compared as written after trimming; several shapes may be allowed.
const POSTAL_SHAPES: &[(&str, &[&str])] = &[
    ("SE", &["NNNNN", "NNN NN"]),
    ("NO", &["NNNN"]),
    ("FI", &["NNNNN"]),
    ("DK", &["NNNN"]),
    ("DE", &["NNNNN"]),
    ("AT", &["NNNN"]),
    ("NL", &["NNNNAA", "NNNN AA"]),
    ("BE", &["NNNN"]),
    ("CH", &["NNNN"]),
    ("FR", &["NNNNN"]),
    ("IT", &["NNNNN"]),
    ("ES", &["NNNNN"]),
    ("PL", &["NN-NNN"]),
    (
        "GB",
        &[
            "AN NAA", "ANN NAA", "AAN NAA", "AANN NAA", "ANA NAA", "AANA NAA", "ANNAA", "ANNNAA",
            "AANNAA", "AANNNAA", "ANANAA", "AANANAA",
        ],
    ),
    ("US", &["NNNNN", "NNNNN-NNNN"]),
    ("CA", &["ANA NAN", "ANANAN"]),
    ("AU", &["NNNN"]),
];

fn fits(value: &str, shape: &str) -> bool {
    value.chars().count() == shape.chars().count()
        && value.chars().zip(shape.chars()).all(|(v, s)| match s {
            'N' => v.is_ascii_digit(),
            'A' => v.is_ascii_alphabetic(),
            other => v == other,
        })
}

/// Whether `code` is a postal code of `country`; `None` when we know no shape for it.
pub fn postal_code_ok(country: &str, code: &str) -> Option<bool> {
    let (_, shapes) = POSTAL_SHAPES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(country))?;
    let code = code.trim().to_ascii_uppercase();
    Some(shapes.iter().any(|s| fits(&code, s)))
}

/// Countries where Klarna needs `region` (the state).
const REGION_REQUIRED: &[&str] = &["US", "AU", "CA"];

fn push(out: &mut Vec<RuleViolation>, field: String, reason: impl Into<String>) {
    out.push(RuleViolation {
        field,
        reason: reason.into(),
    });
}

/// Every problem Klarna would have with a body's market, addresses and customer.
pub fn check_body(body: &OrderBody) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    match market(&body.purchase_country) {
        None => push(
            &mut out,
            "purchase_country".into(),
            format!("Klarna does not serve {}", body.purchase_country),
        ),
        Some((currency, locales)) => {
            if !body.purchase_currency.eq_ignore_ascii_case(currency) {
                push(
                    &mut out,
                    "purchase_currency".into(),
                    format!(
                        "Klarna takes {currency} in {}, not {}",
                        body.purchase_country, body.purchase_currency
                    ),
                );
            }
            if let Some(locale) = &body.locale
                && !locales.iter().any(|l| l.eq_ignore_ascii_case(locale))
            {
                push(
                    &mut out,
                    "locale".into(),
                    format!(
                        "{locale} is not served in {}; use one of {}",
                        body.purchase_country,
                        locales.join(", ")
                    ),
                );
            }
        }
    }
    match &body.billing_address {
        Some(a) => check_address("billing_address", a, &mut out),
        None => push(&mut out, "billing_address".into(), "is required"),
    }
    if let Some(a) = &body.shipping_address {
        check_address("shipping_address", a, &mut out);
    }
    if let Some(c) = &body.customer
        && let Some(id) = &c.national_identification_number
        && let Err(reason) = national_id(&body.purchase_country, id)
    {
        push(
            &mut out,
            "customer.national_identification_number".into(),
            reason,
        );
    }
    out
}

fn check_address(prefix: &str, a: &Address, out: &mut Vec<RuleViolation>) {
    let at = |f: &str| format!("{prefix}.{f}");
    let country = a.country.clone().unwrap_or_default();
    let required: [(&str, &Option<String>); 4] = [
        ("street_address", &a.street_address),
        ("postal_code", &a.postal_code),
        ("city", &a.city),
        ("country", &a.country),
    ];
    for (field, value) in required {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            push(out, at(field), "is required");
        }
    }
    if a.organization_name.is_none() {
        for (field, value) in [
            ("given_name", &a.given_name),
            ("family_name", &a.family_name),
        ] {
            match value.as_deref().map(str::trim) {
                None | Some("") => push(out, at(field), "is required"),
                Some(v) if v.chars().count() < 2 => {
                    push(out, at(field), "must be longer than one character");
                }
                Some(v) if v.chars().all(|c| c.is_ascii_digit()) => {
                    push(out, at(field), "must not be only digits");
                }
                Some(_) => {}
            }
        }
    }
    if REGION_REQUIRED.contains(&country.as_str())
        && a.region.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        push(out, at("region"), format!("is required in {country}"));
    }
    if let Some(code) = &a.postal_code
        && postal_code_ok(&country, code) == Some(false)
    {
        push(
            out,
            at("postal_code"),
            format!("{code:?} is not a postal code of {country}"),
        );
    }
    if let Some(email) = &a.email
        && !email_ok(email)
    {
        push(
            out,
            at("email"),
            format!("{email:?} is not an e-mail address"),
        );
    }
    let limits: [(&str, &Option<String>, usize); 12] = [
        ("title", &a.title, 20),
        ("given_name", &a.given_name, 99),
        ("family_name", &a.family_name, 99),
        ("organization_name", &a.organization_name, 99),
        ("email", &a.email, 99),
        ("street_address", &a.street_address, 99),
        ("street_address2", &a.street_address2, 99),
        ("postal_code", &a.postal_code, 10),
        ("city", &a.city, 99),
        ("region", &a.region, 99),
        ("phone", &a.phone, 99),
        ("attention", &a.attention, 99),
    ];
    for (field, value, max) in limits {
        if let Some(v) = value
            && v.chars().count() > max
        {
            push(out, at(field), format!("is longer than {max} characters"));
        }
    }
}

fn email_ok(email: &str) -> bool {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Checks a national identification number for the countries whose format we know:
/// Swedish personnummer, Norwegian fødselsnummer, Finnish henkilötunnus, Danish CPR.
/// Other countries pass unchecked.
pub fn national_id(country: &str, id: &str) -> Result<(), String> {
    match country.to_ascii_uppercase().as_str() {
        "SE" => personnummer(id),
        "NO" => fodselsnummer(id),
        "FI" => henkilotunnus(id),
        "DK" => cpr(id),
        _ => Ok(()),
    }
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn valid_date(day: u32, month: u32) -> bool {
    // Year-independent check; 29 February is accepted for any year.
    let days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12).contains(&month) && day >= 1 && day <= days[(month - 1) as usize]
}

/// `YYMMDD-NNNC`, `YYMMDD+NNNC` or `YYYYMMDDNNNC`; C is a Luhn check digit over the last
/// ten digits. Samordningsnummer (day + 60) are accepted.
fn personnummer(id: &str) -> Result<(), String> {
    let compact: String = id
        .chars()
        .filter(|c| !matches!(c, '-' | '+' | ' '))
        .collect();
    if !compact.chars().all(|c| c.is_ascii_digit()) || !matches!(compact.len(), 10 | 12) {
        return Err("a Swedish personnummer is YYMMDD-NNNC or YYYYMMDDNNNC".into());
    }
    let d = digits(&compact[compact.len() - 10..]);
    let (month, day) = (d[2] * 10 + d[3], d[4] * 10 + d[5]);
    let day = if day > 60 { day - 60 } else { day };
    if !valid_date(day, month) {
        return Err("the personnummer's date of birth is not a date".into());
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let v = if i % 2 == 0 { x * 2 } else { x };
            if v > 9 { v - 9 } else { v }
        })
        .sum();
    if (10 - sum % 10) % 10 == d[9] {
        Ok(())
    } else {
        Err("the personnummer's check digit is wrong".into())
    }
}

/// 11 digits `DDMMYYIIIKK`; K1 and K2 are mod-11 check digits. D-numbers (day + 40) pass.
fn fodselsnummer(id: &str) -> Result<(), String> {
    let compact: String = id.chars().filter(|c| *c != ' ').collect();
    if compact.len() != 11 || !compact.chars().all(|c| c.is_ascii_digit()) {
        return Err("a Norwegian fødselsnummer has 11 digits".into());
    }
    let d = digits(&compact);
    let day = d[0] * 10 + d[1];
    let day = if day > 40 { day - 40 } else { day };
    if !valid_date(day, d[2] * 10 + d[3]) {
        return Err("the fødselsnummer's date of birth is not a date".into());
    }
    let check = |weights: &[u32], upto: usize| {
        let sum: u32 = weights.iter().zip(&d[..upto]).map(|(w, x)| w * x).sum();
        match 11 - sum % 11 {
            11 => Some(0),
            10 => None,
            k => Some(k),
        }
    };
    let k1 = check(&[3, 7, 6, 1, 8, 9, 4, 5, 2], 9);
    let k2 = check(&[5, 4, 3, 2, 7, 6, 5, 4, 3, 2], 10);
    if k1 == Some(d[9]) && k2 == Some(d[10]) {
        Ok(())
    } else {
        Err("the fødselsnummer's check digits are wrong".into())
    }
}

/// `DDMMYYCZZZQ`: C is the century sign (`+`, `-`, `A`–`F`, `U`–`Y`), Q the check
/// character of DDMMYYZZZ mod 31.
fn henkilotunnus(id: &str) -> Result<(), String> {
    const CHECK: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";
    let id = id.trim().to_ascii_uppercase();
    let chars: Vec<char> = id.chars().collect();
    if chars.len() != 11 || !"+-ABCDEFUVWXY".contains(chars[6]) {
        return Err("a Finnish henkilötunnus is DDMMYYCZZZQ".into());
    }
    let number: String = chars[..6].iter().chain(&chars[7..10]).collect();
    let Ok(value) = number.parse::<u64>() else {
        return Err("a Finnish henkilötunnus is DDMMYYCZZZQ".into());
    };
    let d = digits(&number);
    if !valid_date(d[0] * 10 + d[1], d[2] * 10 + d[3]) {
        return Err("the henkilötunnus's date of birth is not a date".into());
    }
    let expected = CHECK[usize::try_from(value % 31).unwrap_or(0)] as char;
    if expected == chars[10] {
        Ok(())
    } else {
        Err("the henkilötunnus's check character is wrong".into())
    }
}

/// `DDMMYY-SSSS` (the hyphen optional). Denmark dropped the mod-11 check in 2007, so only
/// the shape and the date are checked.
fn cpr(id: &str) -> Result<(), String> {
    let compact: String = id.chars().filter(|c| *c != '-' && *c != ' ').collect();
    if compact.len() != 10 || !compact.chars().all(|c| c.is_ascii_digit()) {
        return Err("a Danish CPR number is DDMMYY-SSSS".into());
    }
    let d = digits(&compact);
    if valid_date(d[0] * 10 + d[1], d[2] * 10 + d[3]) {
        Ok(())
    } else {
        Err("the CPR number's date of birth is not a date".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Odoo addon reads the markets from its own data file (to say at checkout which
    /// country takes which currency): it must hold what the gateway checks against.
    #[test]
    fn the_addons_market_table_is_markets() {
        const FILE: &str = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../odoo/payment_klarna/data/klarna_markets.json"
        ));
        #[derive(serde::Deserialize, Debug, PartialEq, Eq, PartialOrd, Ord)]
        #[serde(deny_unknown_fields)]
        struct Market {
            country: String,
            currency: String,
            locales: Vec<String>,
        }
        let file: Vec<Market> = serde_json::from_str(FILE).expect("klarna_markets.json parses");
        let countries: Vec<&str> = file.iter().map(|m| m.country.as_str()).collect();
        let mut sorted = countries.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(countries, sorted, "sorted by country, each once");
        let mut file = file;
        file.sort();
        let mut ours: Vec<Market> = MARKETS
            .iter()
            .map(|(country, currency, locales)| Market {
                country: (*country).to_owned(),
                currency: (*currency).to_owned(),
                locales: locales.iter().map(|l| (*l).to_owned()).collect(),
            })
            .collect();
        ours.sort();
        assert_eq!(file, ours);
    }

    #[test]
    fn markets_pair_country_currency_and_locale() {
        assert_eq!(market("se").map(|m| m.0), Some("SEK"));
        assert_eq!(locale_for(Some("sv_SE"), "SE").as_deref(), Some("sv-SE"));
        assert_eq!(locale_for(Some("de_DE"), "SE").as_deref(), Some("sv-SE"));
        assert_eq!(locale_for(Some("en_US"), "DE").as_deref(), Some("en-DE"));
        assert_eq!(locale_for(Some("nb_NO"), "NO").as_deref(), Some("nb-NO"));
        assert_eq!(locale_for(Some("fr_BE"), "BE").as_deref(), Some("fr-BE"));
        assert_eq!(locale_for(None, "FI").as_deref(), Some("fi-FI"));
        assert_eq!(locale_for(Some("de_DE"), "JP"), None);
    }

    #[test]
    fn postal_codes_in_each_countrys_shape() {
        let ok = [
            ("SE", "114 55"),
            ("SE", "11455"),
            ("NO", "0150"),
            ("FI", "00100"),
            ("DK", "1050"),
            ("DE", "10115"),
            ("AT", "1070"),
            ("NL", "1012 AB"),
            ("NL", "1012ab"),
            ("BE", "1000"),
            ("CH", "8001"),
            ("FR", "75002"),
            ("IT", "00184"),
            ("ES", "28013"),
            ("PL", "00-950"),
            ("GB", "W1G 0PW"),
            ("GB", "SW1A 2AA"),
            ("GB", "M1 1AE"),
            ("US", "10001"),
            ("US", "10001-1234"),
            ("CA", "K1A 0B1"),
            ("AU", "2000"),
        ];
        for (country, code) in ok {
            assert_eq!(
                postal_code_ok(country, code),
                Some(true),
                "{country} {code}"
            );
        }
        let bad = [
            ("SE", "1145"),
            ("DE", "1011"),
            ("NL", "AB 1012"),
            ("PL", "00950"),
            ("GB", "12345"),
            ("US", "1000"),
            ("CA", "K1A0B"),
        ];
        for (country, code) in bad {
            assert_eq!(
                postal_code_ok(country, code),
                Some(false),
                "{country} {code}"
            );
        }
        assert_eq!(postal_code_ok("JP", "100-0001"), None);
    }

    #[test]
    fn national_ids_with_their_check_digits() {
        // Published test numbers (Skatteverket, Skatteetaten, DVV, CPR).
        assert_eq!(national_id("SE", "811228-9874"), Ok(()));
        assert_eq!(national_id("SE", "198112289874"), Ok(()));
        assert!(national_id("SE", "811228-9873").is_err());
        assert!(national_id("SE", "811328-9874").is_err());
        assert_eq!(national_id("NO", "01010750160"), Ok(()));
        assert!(national_id("NO", "01010750161").is_err());
        assert_eq!(national_id("FI", "131052-308T"), Ok(()));
        assert!(national_id("FI", "131052-308U").is_err());
        assert_eq!(national_id("DK", "070761-4285"), Ok(()));
        assert!(national_id("DK", "320761-4285").is_err());
        assert_eq!(national_id("DE", "anything"), Ok(()));
    }

    #[test]
    fn email_shapes() {
        assert!(email_ok("anna@example.se"));
        assert!(!email_ok("anna@example"));
        assert!(!email_ok("anna example.se"));
        assert!(!email_ok("@example.se"));
    }
}
