//! TCP connections made inside a workspace's network namespace, from the host: what
//! `connect` of a local engine does. A short-lived thread enters the namespace of the
//! workspace's init (pinned by a pidfd and checked to be the workspace's), opens the socket
//! there and ends; the socket stays in that namespace, so it reaches exactly what the tenant's
//! own processes reach (its loopback), and nothing the host's packet filter keeps apart is
//! crossed. No process runs in the workspace for it.

use crate::{Loopback, RuntimeError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

/// How long a connection inside a workspace may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `port` on the loopback of the workspace whose init is host process `pid`,
/// after checking with `belongs` (given `/proc/PID/cgroup`) that the process is the
/// workspace's. Blocking: call it off the executor.
pub(crate) fn connect(
    workspace: &str,
    pid: i32,
    belongs: impl Fn(&str) -> bool,
    port: u16,
    loopback: Loopback,
) -> Result<TcpStream, RuntimeError> {
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    let host = |message: String| RuntimeError::Host {
        action: format!("connect to port {port} in {workspace}"),
        message,
    };
    let stopped = || RuntimeError::Conflict {
        name: workspace.to_owned(),
        message: "the workspace is not running".into(),
    };
    let pid_ = Pid::from_raw(pid).ok_or_else(stopped)?;
    let fd = match pidfd_open(pid_, PidfdFlags::empty()) {
        Err(rustix::io::Errno::SRCH) => return Err(stopped()),
        r => r.map_err(|e| host(format!("pidfd_open({pid}): {e}")))?,
    };
    let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|_| stopped())?;
    if !belongs(&groups) {
        return Err(stopped());
    }
    let addr = SocketAddr::new(
        match loopback {
            Loopback::V4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Loopback::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        },
        port,
    );
    // A thread of its own: it leaves the host's namespace for good, and ends here.
    let entered = std::thread::Builder::new()
        .name("hostel-netns".into())
        .spawn(move || {
            rustix::thread::move_into_thread_name_spaces(
                fd.as_fd(),
                rustix::thread::ThreadNameSpaceType::NETWORK,
            )
            .map_err(|e| format!("setns: {e}"))?;
            Ok::<_, String>(TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT))
        })
        .map_err(|e| host(format!("spawn a thread: {e}")))?
        .join()
        .map_err(|_| host("the thread panicked".into()))?
        .map_err(host)?;
    entered.map_err(|e| match e.kind() {
        // The address missing is the same to a caller: IPv6 turned off in the workspace.
        std::io::ErrorKind::ConnectionRefused
        | std::io::ErrorKind::TimedOut
        | std::io::ErrorKind::AddrNotAvailable => RuntimeError::Refused {
            workspace: workspace.to_owned(),
            port,
        },
        _ => host(e.to_string()),
    })
}

/// A connected socket for the executor.
pub(crate) fn tcp_stream(
    stream: std::net::TcpStream,
    name: &str,
    port: u16,
) -> Result<tokio::net::TcpStream, RuntimeError> {
    stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpStream::from_std(stream))
        .map_err(|e| RuntimeError::Host {
            action: format!("connect to port {port} in {name}"),
            message: e.to_string(),
        })
}

/// [`connect`] off the executor, as the engine's [`crate::Connection`].
pub(crate) async fn open(
    workspace: &str,
    pid: i32,
    belongs: impl Fn(&str) -> bool + Send + 'static,
    port: u16,
    loopback: Loopback,
) -> Result<crate::Connection, RuntimeError> {
    let name = workspace.to_owned();
    let stream = tokio::task::spawn_blocking(move || connect(&name, pid, belongs, port, loopback))
        .await
        .map_err(|e| RuntimeError::Host {
            action: format!("connect to port {port} in {workspace}"),
            message: e.to_string(),
        })??;
    Ok(Box::new(tcp_stream(stream, workspace, port)?))
}
