//! Credentials that must never reach a log: passwords, API tokens, the local CLI's secret.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A credential. Its `Debug` prints a placeholder, so a struct holding one can be logged,
/// traced or put in a panic message without leaking it; [`Secret::expose`] hands the value to
/// the one place that uses it. It serializes as its value: only response bodies that carry a
/// new secret to its owner (a token's creation) serialize one.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a credential.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The credential, for the code that checks or sends it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The credential, unwrapped.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"<redacted>\")")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: FromStr> FromStr for Secret<T> {
    type Err = T::Err;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Secret)
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value_and_serde_carries_it() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Form {
            name: String,
            password: Secret<String>,
        }
        let form: Form =
            serde_json::from_str(r#"{"name": "alice", "password": "hunter2hunter2"}"#).unwrap();
        let debug = format!("{form:?} {form:#?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert_eq!(form.password.expose(), "hunter2hunter2");
        assert_eq!(
            serde_json::to_string(&form).unwrap(),
            r#"{"name":"alice","password":"hunter2hunter2"}"#
        );
        assert_eq!(
            "s3cret".parse::<Secret<String>>().map(Secret::into_inner),
            Ok("s3cret".to_owned())
        );
    }
}
