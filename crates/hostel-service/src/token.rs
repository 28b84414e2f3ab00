//! API tokens: made here, shown once, stored only as a SHA-256 hash.

use crate::{Hostel, ServiceError};
use hostel_core::{Action, Outcome, Role, Secret};
use hostel_store::TokenRecord;
use rand::RngExt;
use sha2::{Digest, Sha256};

/// The prefix of every token, so a leaked one is easy to find in code and logs.
const PREFIX: &str = "hostel_";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a token name is acceptable: 1-64 chars of a-z, 0-9, '-', '_'.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Hostel {
    /// Makes a token; returns it (the only time it exists in clear).
    pub fn token_create(&self, name: &str, role: Role) -> Result<Secret<String>, ServiceError> {
        if !valid_name(name) {
            return Err(ServiceError::InvalidTokenName {
                name: name.to_owned(),
            });
        }
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let secret: String = (0..40)
            .map(|_| {
                let i = rng.random_range(0..ALPHABET.len());
                char::from(ALPHABET.get(i).copied().unwrap_or(b'a'))
            })
            .collect();
        let token = format!("{PREFIX}{secret}");
        let result = self.store.add_token(name, role, &hash(&token), self.now());
        let ev = match &result {
            Ok(()) => self.event("token.create", Outcome::Ok),
            Err(e) => self
                .event("token.create", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(ev.with("token", name).with("role", role))?;
        result?;
        Ok(Secret::new(token))
    }

    /// The one place where a caller's role is checked: whether `actor`, holding `role`, may
    /// perform `action`. `what` names the call (`GET /api/tenants/{name}/exec/ws`) for the
    /// record a refusal leaves in the audit log.
    pub fn authorize(
        &self,
        actor: &str,
        role: Role,
        action: Action,
        what: &str,
    ) -> Result<(), ServiceError> {
        if role.may(action) {
            return Ok(());
        }
        let mut ev = self
            .event("api.call", Outcome::Denied)
            .with("call", what)
            .with("action", action)
            .with("reason", format!("{role} token"));
        actor.clone_into(&mut ev.actor);
        self.record(ev)?;
        Err(ServiceError::NotPermitted {
            actor: actor.to_owned(),
            role,
            action,
            what: what.to_owned(),
        })
    }

    /// The live token matching `token`, if any.
    pub fn token_verify(&self, token: &str) -> Result<Option<TokenRecord>, ServiceError> {
        if !token.starts_with(PREFIX) {
            return Ok(None);
        }
        Ok(self.store.token_by_hash(&hash(token))?)
    }

    /// Every token (never their secrets).
    pub fn token_list(&self) -> Result<Vec<TokenRecord>, ServiceError> {
        Ok(self.store.tokens()?)
    }

    /// Revokes a token by name.
    pub fn token_revoke(&self, name: &str) -> Result<(), ServiceError> {
        let result = self.store.revoke_token(name, self.now());
        let ev = match &result {
            Ok(()) => self.event("token.revoke", Outcome::Ok),
            Err(e) => self
                .event("token.revoke", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(ev.with("token", name))?;
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert!(valid_name("ci-runner_1"));
        for bad in ["", "CI", "a b", "x/y", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
