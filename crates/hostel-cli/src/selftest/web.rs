//! The attacker suite's moves against hostel's HTTP side: the API and the web gateway, served
//! in this process on loopback as the daemon serves them, tried with a viewer token and with
//! no credentials at all.

use super::{MoveResult, fail, outcome, seen};
use crate::error::CliError;
use futures_util::StreamExt;
use hostel_core::{Role, TenantName};
use hostel_service::Hostel;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The moves; `secret` is the name of a file in B's home holding `topsecret-<id>`.
pub(super) async fn moves(
    h: &Arc<Hostel>,
    id: &str,
    b: &TenantName,
    secret: &str,
) -> Result<Vec<MoveResult>, CliError> {
    let token_name = format!("selftest-{id}-viewer");
    let viewer = h.token_create(&token_name, Role::Viewer)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail(format!("bind 127.0.0.1:0: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port();
    let app = hostel_web::router(hostel_web::AppState::new(h.clone()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hostel_web::serve(listener, app, async {
        let _ = stopped.await;
    }));
    // An open command in B, so that per-tenant series name it while the moves run.
    let session = h
        .exec(
            b,
            hostel_service::ExecOptions {
                cmd: vec!["sleep".into(), "600".into()],
                ..Default::default()
            },
            &hostel_service::Quiet,
        )
        .await?;
    let link = h.login_link(b, chrono::Duration::minutes(5))?;
    let result = try_moves(port, viewer.expose(), id, b, secret, &link).await;
    let _ = h.exec_kill(&session.id).await;
    let _ = h.exec_finish(b, &session.id, None).await;
    let _ = stop.send(());
    let _ = server.await;
    h.token_revoke(&token_name)?;
    result
}

async fn try_moves(
    port: u16,
    viewer: &str,
    id: &str,
    b: &TenantName,
    secret: &str,
    link: &str,
) -> Result<Vec<MoveResult>, CliError> {
    let mut results = Vec::new();
    let base = format!("127.0.0.1:{port}");

    // A WebSocket upgrade is a GET; a viewer may read, but this runs a command.
    let mut request = format!("ws://{base}/api/tenants/{b}/exec/ws?command=id%20-un&tty=false")
        .into_client_request()
        .map_err(|e| fail(e.to_string()))?;
    let bearer = format!("Bearer {viewer}")
        .parse()
        .map_err(|_| fail("a token that is no header value"))?;
    request.headers_mut().insert("authorization", bearer);
    let (worked, detail) = match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            let mut out = Vec::new();
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Binary(b) = m {
                    out.extend(b.get(1..).unwrap_or_default());
                }
            }
            let text = String::from_utf8_lossy(&out).trim().to_owned();
            (text == b.as_str(), format!("ran as {text:?}"))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            (false, format!("upgrade refused: {}", r.status()))
        }
        Err(e) => (false, e.to_string()),
    };
    results.push(outcome(
        "run a command in B with a viewer token (exec WebSocket)",
        "outside",
        worked,
        detail,
    ));

    let client = reqwest::Client::new();
    let answer = client
        .get(format!("http://{base}/api/tenants/{b}/files/{secret}"))
        .bearer_auth(viewer)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = answer.status();
    let body = answer.bytes().await.unwrap_or_default();
    results.push(outcome(
        "read B's files with a viewer token (file API)",
        "outside",
        String::from_utf8_lossy(&body).contains(&format!("topsecret-{id}")),
        format!("{status}: {}", seen(&body, b"")),
    ));

    let text = client
        .get(format!("http://{base}/metrics"))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?
        .text()
        .await
        .unwrap_or_default();
    let named = text.contains(&format!("tenant=\"{b}\""));
    results.push(outcome(
        "learn tenants' names and usage from /metrics without a token",
        "outside",
        named,
        format!(
            "{} series, {}",
            text.lines().filter(|l| !l.starts_with('#')).count(),
            if named { "B named" } else { "no tenant named" }
        ),
    ));

    // Login CSRF: a page of another site opens B's sign-in link in a visitor's browser, or
    // posts it, to sign the visitor in as B.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let url = format!("http://{base}/login/link/{link}");
    let signed_in = |r: &reqwest::Response| {
        r.headers().get_all("set-cookie").iter().any(|c| {
            c.to_str().is_ok_and(|c| {
                c.starts_with("hostel_session=") && !c.starts_with("hostel_session=;")
            })
        })
    };
    let opened = no_redirects
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let posted = no_redirects
        .post(&url)
        .header("origin", "http://evil.example")
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    results.push(outcome(
        "sign a visitor in as B with B's link, from another site",
        "outside",
        signed_in(&opened) || signed_in(&posted),
        format!(
            "opening it: {}, posting it cross-site: {}",
            opened.status(),
            posted.status()
        ),
    ));
    Ok(results)
}
