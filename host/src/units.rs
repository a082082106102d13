//! Durations and sizes as people write them in manifests, on the command
//! line and in the control protocol: durations as integer milliseconds
//! (`deadline-ms = 500`), sizes as bytes or with a unit (`"64MiB"`).

/// Parses a byte size: an integer, or a number with a unit (`B`, `KiB`,
/// `MiB`, `GiB`, `KB`, `MB`, `GB`), e.g. `"64MiB"`.
///
/// # Errors
///
/// A [`SizeError`] saying what is wrong and what would be accepted.
///
/// # Examples
///
/// ```
/// assert_eq!(troupe::parse_bytes("64MiB"), Ok(64 << 20));
/// assert_eq!(troupe::parse_bytes("4096"), Ok(4096));
/// assert!(troupe::parse_bytes("64 parsecs").is_err());
/// ```
pub fn parse_bytes(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| SizeError::NotASize(text.to_string()))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(SizeError::UnknownUnit(other.to_string())),
    };
    n.checked_mul(scale).ok_or_else(|| SizeError::TooLarge(text.to_string()))
}

/// A size that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number followed by an optional unit.
    #[error("`{0}` is not a size; write e.g. 67108864 or \"64MiB\"")]
    NotASize(String),
    /// A unit that is not one of those accepted.
    #[error("unknown size unit `{0}`; use B, KiB, MiB, GiB, KB, MB or GB")]
    UnknownUnit(String),
    /// More than 2^64 - 1 bytes.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Serde helpers for sizes: a number of bytes, or a string with a unit.
pub(crate) mod bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*n)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Size::deserialize(d) {
            Ok(Size::Number(n)) => Ok(n),
            Ok(Size::Text(t)) => super::parse_bytes(&t).map_err(D::Error::custom),
            Err(_) => Err(D::Error::custom("expected a size: a positive integer of bytes, or a string like \"64MiB\"")),
        }
    }
}

/// Serde helpers for durations written as integer milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_bytes("1KiB"), Ok(1024));
        assert_eq!(parse_bytes("1 KB"), Ok(1000));
        assert_eq!(parse_bytes(" 2GiB "), Ok(2 << 30));
    }

    #[test]
    fn a_bad_size_says_what_is_accepted() {
        assert_eq!(parse_bytes("lots"), Err(SizeError::NotASize("lots".into())));
        assert_eq!(parse_bytes("3TiB"), Err(SizeError::UnknownUnit("TiB".into())));
        assert_eq!(parse_bytes("99999999999GiB"), Err(SizeError::TooLarge("99999999999GiB".into())));
        assert!(SizeError::UnknownUnit("TiB".into()).to_string().contains("MiB"));
    }
}
