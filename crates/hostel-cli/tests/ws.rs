//! The WebSocket terminal of the API against the real daemon and engine.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use futures_util::{SinkExt, StreamExt};
use hostel_testkit::TestRun;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

#[tokio::test]
async fn terminal_over_websocket_with_resize_and_exit_status() {
    terminal_case(TestRun::new(BIN)).await;
}

/// The same web terminal for a tenant on Incus: a system container's exec behind the same
/// service call.
#[tokio::test]
async fn the_web_terminal_works_the_same_on_incus() {
    terminal_case(TestRun::incus(BIN)).await;
}

/// A terminal opened over the exec WebSocket: refused without a token; its size, a resize and
/// the shell's exit status come through.
async fn terminal_case(t: TestRun) {
    let token = t
        .hostel(&["token", "create", "term"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let a = t.create_tenant("ws", &[]);
    let d = t.serve();
    let url = format!(
        "ws://127.0.0.1:{}/api/tenants/{a}/exec/ws?cols=100&rows=30",
        d.http_port
    );

    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "no token must not open a terminal");

    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Binary(
        b"stty size; echo ready-$((40+2))\n".to_vec().into(),
    ))
    .await
    .unwrap();
    let mut screen = String::new();
    let mut sent_resize = false;
    let mut exit = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Message::Binary(b) => screen.push_str(&String::from_utf8_lossy(&b)),
            Message::Text(t) => {
                exit = serde_json::from_str::<serde_json::Value>(&t).unwrap()["exit_code"].as_i64();
            }
            Message::Close(_) => break,
            _ => {}
        }
        if !sent_resize && screen.contains("ready-42") {
            sent_resize = true;
            ws.send(Message::Text(r#"{"resize": [120, 40]}"#.into()))
                .await
                .unwrap();
            ws.send(Message::Binary(b"stty size; exit 5\n".to_vec().into()))
                .await
                .unwrap();
        }
    }
    assert!(screen.contains("30 100"), "{screen}");
    assert!(
        screen.contains("40 120"),
        "resize must reach the terminal: {screen}"
    );
    assert_eq!(exit, Some(5), "{screen}");
}

/// A `{"signal": ...}` frame reaches the command as that signal, inside its workspace; a
/// signal hostel does not send is ignored.
#[tokio::test]
async fn a_signal_frame_reaches_the_command() {
    let t = TestRun::new(BIN);
    let token = t
        .hostel(&["token", "create", "sig"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let a = t.create_tenant("wsig", &[]);
    let d = t.serve();
    let script = "trap 'echo caught-int; exit 9' INT; echo ready; while :; do sleep 0.1; done";
    let url = format!(
        "ws://127.0.0.1:{}/api/tenants/{a}/exec/ws?tty=false&command={}",
        d.http_port,
        url_encode(script)
    );
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut out = String::new();
    let mut exit = None;
    let mut signalled = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Message::Binary(b) => out.push_str(&String::from_utf8_lossy(b.get(1..).unwrap())),
            Message::Text(t) => {
                exit = serde_json::from_str::<serde_json::Value>(&t).unwrap()["exit_code"].as_i64();
            }
            Message::Close(_) => break,
            _ => {}
        }
        if !signalled && out.contains("ready") {
            signalled = true;
            for frame in [r#"{"signal": "STOP"}"#, r#"{"signal": "INT"}"#] {
                ws.send(Message::Text(frame.into())).await.unwrap();
            }
        }
    }
    assert_eq!(out, "ready\ncaught-int\n");
    assert_eq!(exit, Some(9));
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
