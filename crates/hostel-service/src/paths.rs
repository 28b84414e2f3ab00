//! The host layout under one root (default /srv/hostel). hostel writes nowhere else on the host
//! except the engine's own state.

use std::path::{Path, PathBuf};

/// Every path hostel uses under its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Paths { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `users/`: the homes pool's mount point; `users/<tenant>/home` is a tenant's home.
    pub fn users(&self) -> PathBuf {
        self.root.join("users")
    }
    /// `state/`: the database and the homes pool image.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }
    /// `state/hostel.db`
    pub fn database(&self) -> PathBuf {
        self.state().join("hostel.db")
    }
    /// `state/homes.btrfs`
    pub fn pool_image(&self) -> PathBuf {
        self.state().join("homes.btrfs")
    }
    /// `logs/`
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// `logs/audit.jsonl`
    pub fn audit_log(&self) -> PathBuf {
        self.logs().join("audit.jsonl")
    }
    /// `etc/`: configuration.
    pub fn etc(&self) -> PathBuf {
        self.root.join("etc")
    }
    /// `etc/hostel.toml`
    pub fn config(&self) -> PathBuf {
        self.etc().join("hostel.toml")
    }
    /// `images/`: the image build cache (the debootstrapped base).
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Makes the folders (not `users/`, which the pool mounts on).
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for dir in [self.state(), self.logs(), self.etc(), self.images()] {
            std::fs::create_dir_all(&dir)?;
        }
        use std::os::unix::fs::PermissionsExt;
        // The database, audit log and keys are root's alone.
        for dir in [self.state(), self.logs(), self.etc()] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
}
