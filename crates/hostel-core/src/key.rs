//! SSH public keys as tenants hand them in: one key per line in OpenSSH format
//! (`ssh-ed25519 AAAA... comment`), blank lines and `#` comments ignored.
//!
//! Accepted: Ed25519, ECDSA (P-256/384/521), RSA of 2048 bits or more, and their FIDO (`sk-`)
//! variants. Refused with the reason: DSA (broken, and OpenSSH itself no longer accepts it), short
//! RSA, private keys pasted by mistake, authorized_keys options (hostel sets its own policy).

use serde::{Deserialize, Serialize};
use ssh_key::{HashAlg, PublicKey, public::KeyData};
use std::fmt;
use std::str::FromStr;

/// The smallest RSA modulus accepted.
pub const MIN_RSA_BITS: usize = 2048;

/// A parsed, supported SSH public key with its SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshPublicKey {
    openssh: String,
    algorithm: String,
    fingerprint: String,
    comment: String,
}

/// Why a key line was refused. `file` and `line` say where, when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", location(.file, *.line))]
pub struct KeyError {
    /// The file the key came from, if any.
    pub file: Option<String>,
    /// The 1-based line, if any.
    pub line: Option<usize>,
    /// What was wrong.
    pub reason: String,
}

fn location(file: &Option<String>, line: Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("key file {f:?} line {l}: "),
        (Some(f), None) => format!("key file {f:?}: "),
        (None, Some(l)) => format!("key line {l}: "),
        (None, None) => "key: ".to_owned(),
    }
}

impl KeyError {
    fn new(reason: impl Into<String>) -> Self {
        KeyError {
            file: None,
            line: None,
            reason: reason.into(),
        }
    }
}

impl SshPublicKey {
    /// The key as one OpenSSH line (`type base64 comment`).
    pub fn to_openssh(&self) -> &str {
        &self.openssh
    }
    /// The algorithm name, e.g. `ssh-ed25519`.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    /// The comment after the key, often `user@host`; may be empty.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Parses every key in a file's text. `file` names it in errors. A file with no key is an
    /// error, so an empty or wrong file never creates a tenant nobody can log in as.
    pub fn parse_file(file: &str, text: &str) -> Result<Vec<SshPublicKey>, KeyError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.parse::<SshPublicKey>().map_err(|e| KeyError {
                file: Some(file.to_owned()),
                line: Some(i + 1),
                reason: e.reason,
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyError {
                file: Some(file.to_owned()),
                line: None,
                reason: "no public key in the file; pass a .pub file such as ~/.ssh/id_ed25519.pub"
                    .to_owned(),
            });
        }
        Ok(keys)
    }
}

impl FromStr for SshPublicKey {
    type Err = KeyError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let line = line.trim();
        // A comment is shown to admins (`key list`, the dashboard): no newline may split the
        // line and no terminal escape may ride in it.
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(KeyError::new(format!(
                "the key line holds the control character U+{:04X}; a key is one line of text",
                u32::from(c)
            )));
        }
        if line.contains("PRIVATE KEY") {
            return Err(KeyError::new(
                "this is a private key; never hand it out, pass the matching .pub file",
            ));
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if first == "ssh-dss" {
            return Err(KeyError::new(
                "DSA keys are not supported (broken); make an Ed25519 key with ssh-keygen -t ed25519",
            ));
        }
        let key = PublicKey::from_openssh(line).map_err(|e| {
            if !first.is_empty()
                && !first.starts_with("ssh-")
                && !first.starts_with("ecdsa-")
                && !first.starts_with("sk-")
            {
                KeyError::new(format!(
                    "does not start with a key type such as ssh-ed25519 (got {first:?}); \
                     authorized_keys options are not supported"
                ))
            } else {
                KeyError::new(format!("not an OpenSSH public key ({e})"))
            }
        })?;
        match key.key_data() {
            KeyData::Rsa(rsa) => {
                let bits = rsa.n.as_positive_bytes().map(|b| b.len() * 8).unwrap_or(0);
                if bits < MIN_RSA_BITS {
                    return Err(KeyError::new(format!(
                        "RSA key of {bits} bits is too short (minimum {MIN_RSA_BITS}); \
                         make an Ed25519 key with ssh-keygen -t ed25519"
                    )));
                }
            }
            KeyData::Ed25519(_)
            | KeyData::Ecdsa(_)
            | KeyData::SkEd25519(_)
            | KeyData::SkEcdsaSha2NistP256(_) => {}
            _ => {
                return Err(KeyError::new(format!(
                    "key type {} is not supported; use Ed25519, ECDSA or RSA",
                    key.algorithm()
                )));
            }
        }
        let algorithm = key.algorithm().as_str().to_owned();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let comment = key.comment().to_owned();
        let openssh = key
            .to_openssh()
            .map_err(|e| KeyError::new(format!("cannot encode key ({e})")))?;
        Ok(SshPublicKey {
            openssh,
            algorithm,
            fingerprint,
            comment,
        })
    }
}

impl TryFrom<String> for SshPublicKey {
    type Error = KeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SshPublicKey> for String {
    fn from(k: SshPublicKey) -> String {
        k.openssh
    }
}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.openssh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public test keys made with ssh-keygen for these tests only.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbY7kwAdHmtH85Bxt9xpZhqZDkUDHAlfX7EjiWRN0CI alice@laptop";
    const RSA1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQD4ER6F2vYc5bmpUSwAL3qSKM6XkOUi/vA8fPrOyzEwrUXBKBwOkNdffIlQcCZMQzSjBrY/67I2IaGT+XlYzoT1ikYSCnNvWTbKny13t4QGcE2vSID9pm5PzdUvf2Sjr2KPhetYMAXDzrf+eux5fykXvtEalst7wr63K8PpqaQqcw== short";

    /// Regression (#12): a key comment with a newline or a terminal escape was stored and
    /// shown as it was.
    #[test]
    fn issue_12_key_comments_with_control_characters_are_refused() {
        for bad in [
            format!("{ED25519}\u{1b}[2J"),
            format!("{ED25519} two\nlines"),
            format!("{ED25519}\u{7}bell"),
        ] {
            let e = bad.parse::<SshPublicKey>().unwrap_err().to_string();
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
        assert!(format!("{ED25519}\n").parse::<SshPublicKey>().is_ok());
    }

    #[test]
    fn parses_ed25519_with_fingerprint() {
        let k: SshPublicKey = ED25519.parse().unwrap();
        assert_eq!(k.algorithm(), "ssh-ed25519");
        assert_eq!(k.comment(), "alice@laptop");
        assert_eq!(
            k.fingerprint(),
            "SHA256:ZDNLcE1BruEEZJobTFVLEdeBSC3PINruSsZ08Q8kxyk"
        );
        assert_eq!(k.to_openssh(), ED25519);
    }

    #[test]
    fn file_errors_name_file_and_line() {
        let text = format!("# my keys\n\n{ED25519}\nssh-ed25519 garbage\n");
        let err = SshPublicKey::parse_file("keys.pub", &text).unwrap_err();
        assert_eq!((err.file.as_deref(), err.line), (Some("keys.pub"), Some(4)));
        assert!(
            err.to_string()
                .starts_with("key file \"keys.pub\" line 4: not an OpenSSH public key"),
            "{err}"
        );
    }

    #[test]
    fn refuses_what_should_never_be_a_login_key() {
        let cases = [
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----",
                "this is a private key",
            ),
            (
                "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
                "DSA keys are not supported",
            ),
            (
                "from=\"1.2.3.4\" ssh-ed25519 AAAA",
                "does not start with a key type",
            ),
            ("hello", "does not start with a key type"),
        ];
        for (line, reason) in cases {
            let err = line.parse::<SshPublicKey>().unwrap_err();
            assert!(err.reason.starts_with(reason), "{line}: {}", err.reason);
        }
    }

    #[test]
    fn short_rsa_is_refused() {
        let err = RSA1024.parse::<SshPublicKey>().unwrap_err();
        assert!(
            err.reason.starts_with("RSA key of 1024 bits is too short"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = SshPublicKey::parse_file("empty.pub", "# nothing\n").unwrap_err();
        assert_eq!((err.line, err.file.as_deref()), (None, Some("empty.pub")));
        assert!(err.reason.starts_with("no public key in the file"));
    }
}
