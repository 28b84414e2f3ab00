//! hostel's domain core: the types and decisions every other crate shares.
//!
//! This crate owns tenant names ([`TenantName`]), SSH public keys ([`SshPublicKey`]), sizes
//! ([`ByteSize`]), quotas ([`Quota`]), the workspace lifecycle ([`WorkspaceState`] and the plans
//! it yields), placement on a host ([`placement`]), configuration ([`config`]), audit events
//! ([`AuditEvent`]) and the stable error codes with their exit statuses ([`ErrorCode`]).
//!
//! It must never do I/O: no files, sockets, processes, engine or database. Core functions take
//! state and input and return a value or a plan that `hostel-service` carries out; a test
//! (`tests/no_io.rs`) scans this crate for I/O dependencies. Start reading at [`lifecycle`].

pub mod apps;
pub mod audit;
pub mod config;
pub mod error_code;
pub mod history;
pub mod key;
pub mod lifecycle;
pub mod name;
pub mod network;
pub mod placement;
pub mod policy;
pub mod profile;
pub mod quota;
pub mod reconcile;
pub mod role;
pub mod secret;
pub mod session;
pub mod share;
pub mod size;
pub mod snapshot;

pub use apps::WebApp;
pub use audit::{AuditEvent, Outcome};
pub use error_code::ErrorCode;
pub use key::{KeyError, SshPublicKey};
pub use lifecycle::{StartPlan, WorkspaceState};
pub use name::{NameError, TenantName};
pub use profile::{ImageProfile, NESTING_LABEL};
pub use quota::{Cpus, DiskIo, Gpus, Limits, Quota, QuotaChange, QuotaError};
pub use role::{Action, Role};
pub use secret::Secret;
pub use session::Signal;
pub use size::{ByteSize, SizeError};
pub use snapshot::SnapshotName;
