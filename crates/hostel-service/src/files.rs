//! Files in a tenant's home, moved in and out by the tenant itself: `cat` and `tar` run inside
//! the workspace as the tenant, never as root on the host, so a symlink the tenant planted can
//! lead nowhere the tenant could not go, and files land with the tenant's ownership. Paths are
//! relative to the home; `..`, absolute paths and empty or `.` components are refused.

use crate::{ExecOptions, Hostel, Quiet, ServiceError};
use futures_util::StreamExt;
use hostel_core::TenantName;
use hostel_runtime::ExecOutput;
use tokio::io::AsyncWriteExt;

/// What `file_get` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Download {
    /// A file's bytes.
    File(Vec<u8>),
    /// A folder, as an uncompressed tar of its content (entries `./...`).
    Folder(Vec<u8>),
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
            match chunk? {
                ExecOutput::Stdout(b) => out.extend(b),
                ExecOutput::Stderr(b) => err.extend(b),
            }
        }
        let code = self.exec_finish(tenant, &session.id, None).await?;
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

    /// Reads `path` from the tenant's home: a file, or a folder as a tar.
    pub async fn file_get(
        &self,
        tenant: &TenantName,
        path: &str,
    ) -> Result<Download, ServiceError> {
        let path = home_path(path)?;
        // Exit 3: nothing there. A folder is marked by a first line on stderr.
        let script = r#"if [ -d "$1" ]; then echo folder >&2; exec tar -C "$1" -cf - .; elif [ -e "$1" ]; then exec cat -- "$1"; else echo "no such file or folder" >&2; exit 3; fi"#;
        let (code, out, err) = self.file_script(tenant, script, path, None).await?;
        match code {
            0 if err.starts_with(b"folder") => Ok(Download::Folder(out)),
            0 => Ok(Download::File(out)),
            _ => Err(ServiceError::FileFailed {
                path: path.to_owned(),
                message: String::from_utf8_lossy(&err).trim().to_owned(),
                missing: code == 3,
            }),
        }
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
        ];
        for (bad, why) in cases {
            match home_path(bad) {
                Err(ServiceError::BadPath { reason, .. }) => assert_eq!(reason, why, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
