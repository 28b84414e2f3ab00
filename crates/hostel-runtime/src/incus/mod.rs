//! The Incus engine's REST API, as hostel's second backend will drive it: a client for its
//! Unix socket ([`Client`]) and commands run through its exec WebSockets ([`exec()`]).

mod client;
mod exec;

pub use client::{Answer, Client, DEFAULT_SOCKET, Operation};
pub use exec::{ExecArgs, exec};
