//! Files in a tenant's home, moved in and out by the tenant itself: `cat` and `tar` run inside
//! the workspace as the tenant, never as root on the host, so a symlink the tenant planted can
//! lead nowhere the tenant could not go, and files land with the tenant's ownership. Paths are
//! relative to the home; `..`, absolute paths and empty or `.` components are refused.

use crate::{ExecOptions, Hostel, Quiet, ServiceError};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use hostel_core::{Signal, TenantName};
use hostel_runtime::ExecOutput;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The most of a command's stderr (or of stdout where a small answer is expected) the daemon
/// keeps; the rest is read and dropped, so a workspace cannot grow the daemon by writing.
pub const CAPTURE_LIMIT: usize = 64 * 1024;

/// How many chunks of a download may wait for a slow client: the daemon's memory per download
/// is bounded by this times the engine's chunk size, whatever the file's size.
const DOWNLOAD_CHUNKS: usize = 8;

/// Appends `chunk` to `buf`, keeping at most `limit` bytes in all.
pub(crate) fn keep(buf: &mut Vec<u8>, chunk: &[u8], limit: usize) {
    let room = limit.saturating_sub(buf.len());
    buf.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
}

/// What `file_get` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadKind {
    /// A file.
    File,
    /// A folder, as an uncompressed tar of its content (entries `./...`).
    Folder,
}

/// A file, or a folder as a tar, streamed out of the workspace as the reader takes it. The
/// stream ends with an error when the command failed part-way (the bytes before it are
/// incomplete); dropping it stops the command.
pub struct Download {
    /// File or folder.
    pub kind: DownloadKind,
    /// The bytes.
    pub body: BoxStream<'static, Result<Vec<u8>, ServiceError>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("kind", &self.kind)
            .finish()
    }
}

impl Download {
    /// Reads the whole download, refusing one larger than `limit` bytes (for small files:
    /// tests, the attacker suite).
    pub async fn into_bytes(mut self, limit: usize) -> Result<Vec<u8>, ServiceError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.body.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                return Err(ServiceError::FileTooLarge { limit });
            }
            out.extend(chunk);
        }
        Ok(out)
    }
}

/// Checks a home-relative path.
pub fn home_path(path: &str) -> Result<&str, ServiceError> {
    let bad = |reason: &'static str| ServiceError::BadPath {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty"));
    }
    // Found by fuzzing (#13): a NUL byte passed and failed later, at the engine, as an
    // internal error.
    if path.contains('\0') {
        return Err(bad("holds a NUL byte"));
    }
    if path.len() > 4096 {
        return Err(bad("longer than 4096 bytes"));
    }
    if path.starts_with('/') {
        return Err(bad(
            "absolute paths are not allowed; paths are relative to the home",
        ));
    }
    for part in path.split('/') {
        match part {
            "" | "." => return Err(bad("has an empty or '.' component")),
            ".." => return Err(bad("'..' would leave the home")),
            _ => {}
        }
    }
    Ok(path)
}

impl Hostel {
    /// Runs `script` with the path as `$1` as the tenant; returns exit code, stdout, stderr.
    async fn file_script(
        &self,
        tenant: &TenantName,
        script: &str,
        path: &str,
        input: Option<Vec<u8>>,
    ) -> Result<(i64, Vec<u8>, Vec<u8>), ServiceError> {
        let opts = ExecOptions {
            cmd: vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                "sh".into(),
                path.into(),
            ],
            stdin: input.is_some(),
            ..ExecOptions::default()
        };
        let mut session = self.exec(tenant, opts, &Quiet).await?;
        if let Some(bytes) = input {
            let mut w = session.input;
            tokio::spawn(async move {
                let _ = w.write_all(&bytes).await;
                let _ = w.shutdown().await;
            });
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(chunk) = session.output.next().await {
            match chunk {
                Ok(ExecOutput::Stdout(b)) => keep(&mut out, &b, CAPTURE_LIMIT),
                Ok(ExecOutput::Stderr(b)) => keep(&mut err, &b, CAPTURE_LIMIT),
                Err(e) => {
                    let _ = self.exec_signal(&session.handle, Signal::Kill).await;
                    let _ = self.exec_finish(&session.handle).await;
                    return Err(e.into());
                }
            }
        }
        let code = self.exec_finish(&session.handle).await?;
        Ok((code, out, err))
    }

    /// Writes `bytes` to `path` in the tenant's home (folders made as needed).
    pub async fn file_put(
        &self,
        tenant: &TenantName,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), ServiceError> {
        let path = home_path(path)?;
        let script = r#"mkdir -p -- "$(dirname -- "$1")" && cat > "$1""#;
        let (code, _, err) = self.file_script(tenant, script, path, Some(bytes)).await?;
        if code != 0 {
            return Err(ServiceError::FileFailed {
                path: path.to_owned(),
                message: String::from_utf8_lossy(&err).trim().to_owned(),
                missing: false,
            });
        }
        Ok(())
    }

    /// Reads `path` from the tenant's home: a file, or a folder as a tar, streamed (see
    /// [`Download`]). The command's first line on stdout says what it found (the engine
    /// keeps no order between stdout and stderr); only then do bytes flow, through a small
    /// bounded channel, so a slow reader slows the command instead of growing the daemon.
    pub async fn file_get(
        self: &Arc<Self>,
        tenant: &TenantName,
        path: &str,
    ) -> Result<Download, ServiceError> {
        let path = home_path(path)?.to_owned();
        let script = r#"if [ -d "$1" ]; then echo folder; exec tar -C "$1" -cf - .; elif [ -e "$1" ]; then echo file; exec cat -- "$1"; else echo "no such file or folder" >&2; exit 3; fi"#;
        let opts = ExecOptions {
            cmd: vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                "sh".into(),
                path.clone(),
            ],
            ..ExecOptions::default()
        };
        let mut session = self.exec(tenant, opts, &Quiet).await?;
        // The header line, and whatever came with it; stderr is kept (bounded) for errors.
        let (mut head, mut err) = (Vec::new(), Vec::new());
        let kind = loop {
            if let Some(end) = head.iter().position(|b| *b == b'\n') {
                let kind = match head.get(..end) {
                    Some(b"folder") => Some(DownloadKind::Folder),
                    Some(b"file") => Some(DownloadKind::File),
                    _ => None,
                };
                head.drain(..=end);
                break kind;
            }
            if head.len() > 64 {
                break None;
            }
            match session.output.next().await {
                Some(Ok(ExecOutput::Stdout(b))) => head.extend(b),
                Some(Ok(ExecOutput::Stderr(b))) => keep(&mut err, &b, CAPTURE_LIMIT),
                Some(Err(e)) => {
                    let _ = self.exec_signal(&session.handle, Signal::Kill).await;
                    let _ = self.exec_finish(&session.handle).await;
                    return Err(e.into());
                }
                None => break None,
            }
        };
        let Some(kind) = kind else {
            while let Some(Ok(chunk)) = session.output.next().await {
                if let ExecOutput::Stderr(b) = chunk {
                    keep(&mut err, &b, CAPTURE_LIMIT);
                }
            }
            let code = self.exec_finish(&session.handle).await?;
            return Err(ServiceError::FileFailed {
                path,
                message: String::from_utf8_lossy(&err).trim().to_owned(),
                missing: code == 3,
            });
        };
        let (tx, rx) = tokio::sync::mpsc::channel(DOWNLOAD_CHUNKS);
        let h = self.clone();
        tokio::spawn(async move {
            let mut reader_gone = !head.is_empty() && tx.send(Ok(head)).await.is_err();
            while !reader_gone && let Some(chunk) = session.output.next().await {
                match chunk {
                    Ok(ExecOutput::Stdout(b)) => reader_gone = tx.send(Ok(b)).await.is_err(),
                    Ok(ExecOutput::Stderr(b)) => keep(&mut err, &b, CAPTURE_LIMIT),
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        break;
                    }
                }
            }
            if reader_gone {
                let _ = h.exec_signal(&session.handle, Signal::Kill).await;
            }
            drop(session.output);
            let end = match h.exec_finish(&session.handle).await {
                Ok(0) => return,
                Ok(_) if reader_gone => return,
                Ok(_) => ServiceError::FileFailed {
                    path,
                    message: String::from_utf8_lossy(&err).trim().to_owned(),
                    missing: false,
                },
                Err(e) => e,
            };
            let _ = tx.send(Err(end)).await;
        });
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        Ok(Download { kind, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_home_pass() {
        for ok in ["a", "work/data.csv", ".bashrc", "a/b/c..d"] {
            assert_eq!(home_path(ok).map_err(|_| ()), Ok(ok), "{ok}");
        }
        let cases = [
            ("", "empty"),
            (
                "/etc/passwd",
                "absolute paths are not allowed; paths are relative to the home",
            ),
            ("../x", "'..' would leave the home"),
            ("a/../../b", "'..' would leave the home"),
            ("a//b", "has an empty or '.' component"),
            ("./a", "has an empty or '.' component"),
            ("a\0b", "holds a NUL byte"),
        ];
        for (bad, why) in cases {
            match home_path(bad) {
                Err(ServiceError::BadPath { reason, .. }) => assert_eq!(reason, why, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let long = "a/".repeat(2049);
        assert!(home_path(&long).is_err());
    }
}
