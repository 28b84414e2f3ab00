//! The Incus backend: [`IncusRuntime`], on a client for the daemon's Unix socket ([`Client`])
//! and commands run through its exec WebSockets ([`exec()`]).

mod build;
mod client;
mod exec;
mod runtime;
mod spec;

pub use client::{Answer, Client, DEFAULT_SOCKET, Operation};
pub use exec::{ExecArgs, exec};
pub use runtime::{DEFAULT_POOL, IncusRuntime};
