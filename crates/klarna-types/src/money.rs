//! Money as Klarna wants it: an integer count of minor units that carries its currency.
//!
//! Odoo hands amounts over as JSON floats (`19.99`, `1.4299999999999997`). They are turned
//! into minor units through their shortest decimal form and Odoo's own rounding (half-up,
//! away from zero, at the currency's precision), never by `f64 * 100` truncation, which
//! makes `19.99` into `1998`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Klarna's cap on any single amount (`order_amount`, `unit_price`, `total_amount`, ...).
pub const MAX_AMOUNT: i64 = 200_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code {0:?}")]
    UnknownCurrency(String),
    #[error("{0} is not a finite number")]
    NotFinite(String),
    #[error("amount {0} does not fit in minor units")]
    Overflow(String),
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// An ISO 4217 currency Klarna or Odoo may use, with its number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// ISO 4217 minor-unit exponents that differ from 2.
const EXPONENTS: &[(&str, u8)] = &[
    ("BHD", 3),
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("PYG", 0),
    ("RWF", 0),
    ("TND", 3),
    ("UGX", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
];

impl Currency {
    /// The currency for an ISO 4217 alphabetic code (case-insensitive).
    pub fn new(code: &str) -> Result<Self, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        let bytes: [u8; 3] = upper
            .as_bytes()
            .try_into()
            .ok()
            .filter(|b: &[u8; 3]| b.iter().all(u8::is_ascii_uppercase))
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        let exponent = EXPONENTS
            .iter()
            .find(|(c, _)| *c == upper)
            .map_or(2, |(_, e)| *e);
        Ok(Self {
            code: bytes,
            exponent,
        })
    }

    pub fn code(&self) -> &str {
        // The bytes were checked to be ASCII upper-case letters on construction.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Number of decimals of the minor unit: 0 for JPY, 2 for EUR, 3 for KWD.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Converts a decimal amount in major units to minor units, rounding half-up away from
    /// zero at this currency's precision, the way Odoo's `float_round` does.
    pub fn minor_from_decimal(&self, value: Decimal) -> Result<i64, MoneyError> {
        let rounded = value.round_dp_with_strategy(
            u32::from(self.exponent),
            RoundingStrategy::MidpointAwayFromZero,
        );
        let scaled = rounded
            .checked_mul(Decimal::from(10_i64.pow(u32::from(self.exponent))))
            .ok_or_else(|| MoneyError::Overflow(value.to_string()))?;
        i64::try_from(scaled.trunc()).map_err(|_| MoneyError::Overflow(value.to_string()))
    }

    /// Converts one of Odoo's JSON floats to minor units through its shortest decimal form.
    pub fn minor_from_f64(&self, value: f64) -> Result<i64, MoneyError> {
        self.minor_from_decimal(decimal_from_f64(value)?)
    }
}

/// The shortest decimal that reads back as `value`: what Python's `repr` (and so Odoo's
/// JSON) printed. `0.1 + 0.2` becomes `0.30000000000000004`, `19.99` stays `19.99`.
pub fn decimal_from_f64(value: f64) -> Result<Decimal, MoneyError> {
    if !value.is_finite() {
        return Err(MoneyError::NotFinite(value.to_string()));
    }
    let text = format!("{value}");
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| MoneyError::Overflow(text))
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units of its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::from_minor(0, currency)
    }

    /// An Odoo float amount (`amount_total`, `price_total`, ...) in this currency.
    pub fn from_odoo(value: f64, currency: Currency) -> Result<Self, MoneyError> {
        Ok(Self::from_minor(currency.minor_from_f64(value)?, currency))
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|m| Self::from_minor(m, self.currency))
            .ok_or_else(|| MoneyError::Overflow(format!("{self} + {other}")))
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|m| Self::from_minor(m, self.currency))
            .ok_or_else(|| MoneyError::Overflow(format!("{self} - {other}")))
    }

    fn same_currency(&self, other: Self) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// The amount as an exact decimal in the currency's exponent (`12.50`, `700`,
    /// `0.005`): what Odoo's monetary fields hold.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, u32::from(self.currency.exponent))
    }

    /// [`Self::to_decimal`] as text, without the currency.
    pub fn decimal(&self) -> String {
        self.to_decimal().to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::new(code).expect("known currency")
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(cur("EUR").exponent(), 2);
        assert_eq!(cur("sek").exponent(), 2);
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("KWD").exponent(), 3);
        assert!(Currency::new("EURO").is_err());
        assert!(Currency::new("E1R").is_err());
    }

    #[test]
    fn odoo_floats_become_exact_minor_units() {
        // The original design's `int(price * 100)` gives 1998 here.
        assert_eq!(cur("EUR").minor_from_f64(19.99), Ok(1999));
        assert_eq!(cur("EUR").minor_from_f64(0.1 + 0.2), Ok(30));
        assert_eq!(cur("EUR").minor_from_f64(1.4299999999999997), Ok(143));
        // Half-up, away from zero, like Odoo's float_round.
        assert_eq!(cur("EUR").minor_from_f64(2.675), Ok(268));
        assert_eq!(cur("EUR").minor_from_f64(-2.675), Ok(-268));
        assert_eq!(cur("JPY").minor_from_f64(1234.5), Ok(1235));
        assert_eq!(cur("KWD").minor_from_f64(1.2345), Ok(1235));
        assert_eq!(cur("SEK").minor_from_f64(1236789.61), Ok(123_678_961));
        assert!(cur("EUR").minor_from_f64(f64::NAN).is_err());
        assert!(cur("EUR").minor_from_f64(1e30).is_err());
    }

    #[test]
    fn arithmetic_is_checked_and_currency_safe() {
        let eur = cur("EUR");
        let a = Money::from_minor(i64::MAX, eur);
        assert!(a.checked_add(Money::from_minor(1, eur)).is_err());
        assert!(
            Money::zero(eur)
                .checked_add(Money::zero(cur("SEK")))
                .is_err()
        );
        assert_eq!(
            Money::from_minor(1999, eur).to_string(),
            "19.99 EUR".to_owned()
        );
    }
}
