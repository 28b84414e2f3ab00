//! Raising the host's kernel settings under `/proc/sys` (or another folder of the same shape,
//! for tests): each key to at least a value, never lowering one an admin set higher.

use std::path::{Path, PathBuf};

/// A key raised: its value before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// The key as `sysctl` names it (`fs.inotify.max_user_instances`).
    pub key: String,
    pub from: u64,
    pub to: u64,
}

/// A key that could not be read or raised, and why.
#[derive(Debug)]
pub struct NotRaised {
    pub key: String,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// What [`raise_at_least`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub raised: Vec<Raised>,
    pub failed: Vec<NotRaised>,
}

/// `fs/inotify/max_user_instances` as `sysctl` writes it.
fn dotted(key: &str) -> String {
    key.replace('/', ".")
}

/// Raises each key (a path under `dir`, `fs/inotify/max_user_instances`) to at least its
/// value. Blocking: a few small reads and writes.
pub fn raise_at_least(dir: &Path, keys: &[(&str, u64)]) -> Outcome {
    let mut out = Outcome::default();
    for &(key, want) in keys {
        let path = dir.join(key);
        let fail = |source| NotRaised {
            key: dotted(key),
            path: path.clone(),
            source,
        };
        let now = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{:?} is not a number: {e}", text.trim()),
                )
            }),
            Err(e) => Err(e),
        };
        match now {
            Ok(now) if now >= want => {}
            Ok(now) => match std::fs::write(&path, want.to_string()) {
                Ok(()) => out.raised.push(Raised {
                    key: dotted(key),
                    from: now,
                    to: want,
                }),
                Err(e) => out.failed.push(fail(e)),
            },
            Err(e) => out.failed.push(fail(e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_lower_values_keeps_higher_ones_and_reports_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("fs/inotify")).unwrap();
        std::fs::write(dir.path().join("fs/inotify/max_user_instances"), "128\n").unwrap();
        std::fs::write(
            dir.path().join("fs/inotify/max_user_watches"),
            "9000000000\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("fs/inotify/garbled"), "lots\n").unwrap();
        let out = raise_at_least(
            dir.path(),
            &[
                ("fs/inotify/max_user_instances", 1 << 20),
                ("fs/inotify/max_user_watches", 1 << 20),
                ("fs/inotify/garbled", 1),
                ("user/max_user_namespaces", 1),
            ],
        );
        assert_eq!(
            out.raised,
            vec![Raised {
                key: "fs.inotify.max_user_instances".into(),
                from: 128,
                to: 1 << 20
            }]
        );
        let read = |k: &str| std::fs::read_to_string(dir.path().join(k)).unwrap();
        assert_eq!(read("fs/inotify/max_user_instances"), "1048576");
        assert_eq!(read("fs/inotify/max_user_watches"), "9000000000\n");
        let failed: Vec<_> = out
            .failed
            .iter()
            .map(|f| (f.key.as_str(), f.source.kind()))
            .collect();
        assert_eq!(
            failed,
            vec![
                ("fs.inotify.garbled", std::io::ErrorKind::InvalidData),
                ("user.max_user_namespaces", std::io::ErrorKind::NotFound),
            ]
        );
    }
}
