//! What the gateways' accept loops share: an accept error never ends a listener.

use std::time::Duration;

/// How long an accept loop pauses after `error` before it accepts again. A connection that
/// went away before it was accepted costs nothing; anything else (EMFILE and ENFILE when the
/// descriptors run out, ENOBUFS, ENOMEM) is logged and waited out, since accepting again at
/// once would only spin: the listener serves on once connections close.
pub fn accept_pause(error: &std::io::Error) -> Duration {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return Duration::ZERO;
    }
    tracing::error!(%error, "accept failed; pausing the listener for a moment");
    Duration::from_millis(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_pauses_and_a_gone_client_does_not() {
        let emfile = std::io::Error::from_raw_os_error(24);
        assert_eq!(accept_pause(&emfile), Duration::from_millis(200));
        let gone = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        assert_eq!(accept_pause(&gone), Duration::ZERO);
    }
}
