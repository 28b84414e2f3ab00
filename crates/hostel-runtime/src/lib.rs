//! hostel's runtime layer: the one [`Runtime`] trait every container engine backend implements,
//! and the [`storage`] of tenants' homes.
//!
//! Backends: [`docker::DockerRuntime`] (the Docker Engine API through bollard) and
//! [`fake::FakeRuntime`] (in memory, for service tests). No engine type crosses the trait: engine
//! errors become [`RuntimeError`], engine objects become [`WorkspaceInfo`] and [`ImageInfo`].
//!
//! This crate never decides anything: it does what `hostel-service` asks, labels everything it
//! makes, and reports what the engine says. Start reading at [`Runtime`].

mod blockdev;
pub mod docker;
mod error;
pub mod fake;
pub mod incus;
pub mod netfilter;
mod netns;
pub mod storage;
pub mod sysctl;
mod types;

pub use error::RuntimeError;
pub use types::*;

use async_trait::async_trait;
use hostel_core::Limits;

/// A container engine as hostel uses it. `dyn`-safe; share it as `Arc<dyn Runtime>`.
///
/// Containers are addressed by name (`hostel-<tenant>`); names are unique per engine.
#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// Checks the engine answers; returns what it says about itself.
    async fn ping(&self) -> Result<EngineInfo, RuntimeError>;

    /// Keeps the engine's own storage able to take what it accepts, where it is a filesystem
    /// image on this host that hostel can grow (see [`storage::pool`]); returns how it stands.
    /// `None`: nothing for hostel to keep.
    async fn keep_storage(&self) -> Result<Option<storage::PoolState>, RuntimeError> {
        Ok(None)
    }

    /// How the engine's own storage stands, as [`Runtime::keep_storage`] sees it, changing
    /// nothing.
    async fn storage_state(&self) -> Result<Option<storage::PoolState>, RuntimeError> {
        Ok(None)
    }

    /// Creates (does not start) a workspace container.
    async fn create(&self, spec: &WorkspaceSpec) -> Result<WorkspaceInfo, RuntimeError>;
    /// Applies `spec` in place to the stopped workspace it names, keeping what the workspace
    /// wrote outside its home, where the engine keeps that as the tenant's (a system
    /// container's root disk) and the image is the same. `false`: not done (the engine throws
    /// its writable layer away with the container, the workspace is not there or runs, or the
    /// image differs); the caller then removes and re-creates it.
    async fn reconfigure(&self, spec: &WorkspaceSpec) -> Result<bool, RuntimeError> {
        let _ = spec;
        Ok(false)
    }
    /// Starts a created or stopped container.
    async fn start(&self, name: &str) -> Result<(), RuntimeError>;
    /// Stops a running container, killing it after `grace`.
    async fn stop(&self, name: &str, grace_secs: u32) -> Result<(), RuntimeError>;
    /// Removes a container (stopping it first). Removing a missing one is not an error.
    async fn remove(&self, name: &str) -> Result<(), RuntimeError>;
    /// What the engine has under this name, if anything.
    async fn inspect(&self, name: &str) -> Result<Option<WorkspaceInfo>, RuntimeError>;
    /// Every container carrying all of these labels.
    async fn list(&self, labels: &[(String, String)]) -> Result<Vec<WorkspaceInfo>, RuntimeError>;
    /// Applies new CPU, memory and pids limits to an existing container.
    async fn update_limits(&self, name: &str, limits: &Limits) -> Result<(), RuntimeError>;
    /// Live usage of a running container.
    async fn stats(&self, name: &str) -> Result<WorkspaceStats, RuntimeError>;

    /// Starts a command in a running container and returns its streams and its handle.
    async fn exec(&self, name: &str, req: &ExecRequest) -> Result<ExecSession, RuntimeError>;

    /// Opens a TCP connection to `port` on a running workspace's loopback, as its own
    /// processes would: it reaches what they reach there and nothing else. Nothing listening
    /// is [`RuntimeError::Refused`]; a workspace not running is [`RuntimeError::Conflict`].
    async fn connect(
        &self,
        name: &str,
        port: u16,
        loopback: Loopback,
    ) -> Result<Connection, RuntimeError>;

    /// How many bytes of a workspace's own output (its init's stdout and stderr, which root
    /// inside can write to) the engine holds on the host now, rotated files included.
    async fn output_log_bytes(&self, name: &str) -> Result<u64, RuntimeError>;

    /// Makes a bridge network. A name taken, or a subnet that overlaps one in use, is
    /// [`RuntimeError::Conflict`].
    async fn network_create(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError>;
    /// The network with this name, if any.
    async fn network_inspect(&self, name: &str) -> Result<Option<NetworkInfo>, RuntimeError>;
    /// Removes a network (its containers must be gone). Removing a missing one is not an error.
    async fn network_remove(&self, name: &str) -> Result<(), RuntimeError>;
    /// Every network carrying all of these labels (all networks when none are given).
    async fn networks(&self, labels: &[(String, String)])
    -> Result<Vec<NetworkInfo>, RuntimeError>;

    /// The image with this reference, if the engine has it.
    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError>;
    /// Every image carrying this label.
    async fn images(&self, label: &str) -> Result<Vec<ImageInfo>, RuntimeError>;
    /// Pulls an image from a registry.
    async fn pull(&self, reference: &str) -> Result<(), RuntimeError>;
    /// Makes an image from a root filesystem tarball (as `docker import`).
    async fn import(&self, rootfs_tar: Vec<u8>, reference: &str) -> Result<(), RuntimeError>;
    /// Builds an image from a build context tarball; `progress` gets each output line.
    async fn build(
        &self,
        req: &BuildRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), RuntimeError>;

    /// Snapshots the workspace's system (its root disk) as `snapshot`, on engines with
    /// [`EngineInfo::system_snapshots`]; the others refuse.
    async fn snapshot_system(&self, name: &str, snapshot: &str) -> Result<(), RuntimeError> {
        let _ = (name, snapshot);
        Err(no_system_snapshots())
    }
    /// The names of the workspace's system snapshots; none where the engine takes none or the
    /// workspace does not exist.
    async fn system_snapshots(&self, name: &str) -> Result<Vec<String>, RuntimeError> {
        let _ = name;
        Ok(Vec::new())
    }
    /// Puts the system snapshot back as the workspace's root disk; the workspace is stopped.
    async fn restore_system(&self, name: &str, snapshot: &str) -> Result<(), RuntimeError> {
        let _ = (name, snapshot);
        Err(no_system_snapshots())
    }
    /// Removes a system snapshot; one that is not there is not an error.
    async fn delete_system_snapshot(&self, name: &str, snapshot: &str) -> Result<(), RuntimeError> {
        let _ = (name, snapshot);
        Err(no_system_snapshots())
    }
}

fn no_system_snapshots() -> RuntimeError {
    RuntimeError::Unsupported("this engine snapshots homes only, not a workspace's system".into())
}

/// The bytes of a file and of its rotated siblings (`PATH`, `PATH.1`...).
pub(crate) fn log_bytes(path: &std::path::Path) -> u64 {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let name = name.to_string_lossy().into_owned();
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
