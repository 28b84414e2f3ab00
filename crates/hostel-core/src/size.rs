//! Byte sizes as people write them: `512M`, `2G`, `1.5GiB`, `1048576`.
//!
//! Suffixes are binary (K = 1024), as Docker and most admins read them; `KB`/`MB` are accepted as
//! the same binary units rather than refused, and the canonical display is `512MiB`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "NumberOrText", into = "String")]
pub struct ByteSize(u64);

/// Why a size did not parse; keeps the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "size {input:?}: {reason}; write a number with an optional unit K, M, G or T (e.g. 512M, 2G)"
)]
pub struct SizeError {
    /// The rejected input.
    pub input: String,
    /// What was wrong.
    pub reason: &'static str,
}

const KIB: u64 = 1024;

impl ByteSize {
    /// A size of exactly `n` bytes.
    pub const fn bytes(n: u64) -> Self {
        ByteSize(n)
    }
    /// A size of `n` MiB.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * KIB * KIB)
    }
    /// A size of `n` GiB.
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * KIB * KIB * KIB)
    }
    /// The number of bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| {
            Err(SizeError {
                input: s.to_owned(),
                reason,
            })
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return fail("no number");
        }
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => KIB.pow(2),
            "g" | "gb" | "gib" => KIB.pow(3),
            "t" | "tb" | "tib" => KIB.pow(4),
            _ => return fail("unknown unit"),
        };
        let value: f64 = match num.parse() {
            Ok(v) => v,
            Err(_) => return fail("not a number"),
        };
        let bytes = value * mult as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return fail("too large");
        }
        if num.contains('.') && mult == 1 {
            return fail("a byte count must be whole");
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl TryFrom<String> for ByteSize {
    type Error = SizeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<NumberOrText> for ByteSize {
    type Error = SizeError;
    fn try_from(v: NumberOrText) -> Result<Self, Self::Error> {
        String::from(v).parse()
    }
}

/// A value written as a number or as text: `memory = 1073741824` and `memory = "1G"` in a
/// file, and an environment variable, whose `1024` reads as a number, all reach the same parser.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NumberOrText {
    /// A whole number.
    Int(u64),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Text(String),
}

impl From<NumberOrText> for String {
    fn from(v: NumberOrText) -> String {
        match v {
            NumberOrText::Int(n) => n.to_string(),
            NumberOrText::Float(x) => x.to_string(),
            NumberOrText::Text(s) => s,
        }
    }
}

impl From<ByteSize> for String {
    fn from(b: ByteSize) -> String {
        b.to_string()
    }
}

impl ByteSize {
    /// Approximate, for usage figures: the largest unit with one decimal (`1.5GiB`, `312.4MiB`).
    pub fn human(self) -> String {
        for (name, size) in UNITS {
            if self.0 >= size {
                if self.0.is_multiple_of(size) {
                    return format!("{}{name}", self.0 / size);
                }
                return format!("{:.1}{name}", self.0 as f64 / size as f64);
            }
        }
        format!("{}B", self.0)
    }
}

const UNITS: [(&str, u64); 4] = [
    ("TiB", KIB * KIB * KIB * KIB),
    ("GiB", KIB * KIB * KIB),
    ("MiB", KIB * KIB),
    ("KiB", KIB),
];

impl fmt::Display for ByteSize {
    /// Exact, in the largest unit that divides the size (`512MiB`, `1536MiB`, `100B`), so the
    /// display always parses back to the same size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, size) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{name}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_forms() {
        let cases = [
            ("512M", 512 * KIB * KIB),
            ("2G", 2 * KIB.pow(3)),
            ("2g", 2 * KIB.pow(3)),
            ("1.5GiB", 3 * KIB.pow(3) / 2),
            ("100MB", 100 * KIB * KIB),
            ("1048576", 1_048_576),
            ("64k", 64 * KIB),
            (" 1T ", KIB.pow(4)),
        ];
        for (input, bytes) in cases {
            assert_eq!(input.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{input}");
        }
    }

    #[test]
    fn refuses_with_the_reason() {
        let cases = [
            ("", "no number"),
            ("G", "no number"),
            ("12X", "unknown unit"),
            ("1.2.3M", "not a number"),
            ("1.5", "a byte count must be whole"),
            ("99999999999T", "too large"),
            ("-1G", "no number"),
        ];
        for (input, reason) in cases {
            assert_eq!(
                input.parse::<ByteSize>().map_err(|e| e.reason),
                Err(reason),
                "{input}"
            );
        }
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(ByteSize::mib(512).to_string(), "512MiB");
        assert_eq!(ByteSize::gib(2).to_string(), "2GiB");
        assert_eq!(ByteSize(3 * KIB.pow(3) / 2).to_string(), "1536MiB");
        assert_eq!(ByteSize(3 * KIB.pow(3) / 2).human(), "1.5GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize(100).to_string(), "100B");
    }

    proptest! {
        #[test]
        fn display_parses_back(n in 0u64..(1u64 << 50)) {
            let b = ByteSize(n);
            prop_assert_eq!(b.to_string().parse::<ByteSize>(), Ok(b));
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<ByteSize>();
        }
    }
}
