//! The gateway's host key: made once (Ed25519) under `etc/`, mode 0600, and kept, so clients'
//! known_hosts stay valid across restarts.

use crate::GatewayError;
use russh::keys::{Algorithm, PrivateKey};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads the host key at `path`, or makes one there if none exists.
pub fn load_or_create_host_key(path: &Path) -> Result<PrivateKey, GatewayError> {
    let fail = |message: String| GatewayError::HostKey {
        path: path.display().to_string(),
        message,
    };
    if path.exists() {
        return russh::keys::load_secret_key(path, None).map_err(|e| fail(e.to_string()));
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| fail(format!("cannot make a key: {e}")))?;
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| fail(format!("cannot encode the key: {e}")))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(e.to_string()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))?;
    Ok(key)
}
