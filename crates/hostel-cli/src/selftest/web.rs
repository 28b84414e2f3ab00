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

/// The address the move that locks tenants out fails its sign-ins from; its bans are lifted
/// at the end.
const LOCKOUT_FROM: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 4));

/// Sessions and links the moves start from.
struct Given<'a> {
    viewer: &'a str,
    link: &'a str,
    /// A second link of B's, for the lockout move.
    lockout_link: &'a str,
    a: &'a TenantName,
    a_session: &'a str,
    b_session: &'a str,
    ban_after: u32,
}

/// The moves; `secret` is the name of a file in B's home holding `topsecret-<id>`.
pub(super) async fn moves(
    h: &Arc<Hostel>,
    id: &str,
    a: &TenantName,
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
    // As the daemon serves it: the names it answers to are its own listening address.
    let local = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let app = hostel_web::router(hostel_web::AppState::new(h.clone()).serving(&[local]));
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
    let minutes = chrono::Duration::minutes(5);
    let link = h.login_link(b, minutes)?;
    let lockout_link = h.login_link(b, minutes)?;
    let (_, a_session) = h.login_with_link(h.login_link(a, minutes)?.expose(), None)?;
    let (_, b_session) = h.login_with_link(h.login_link(b, minutes)?.expose(), None)?;
    let given = Given {
        viewer: viewer.expose(),
        link: link.expose(),
        lockout_link: lockout_link.expose(),
        a,
        a_session: a_session.expose(),
        b_session: b_session.expose(),
        ban_after: h.config().ssh.ban_after_failures,
    };
    let result = try_moves(port, &given, id, b, secret).await;
    h.web_logout(a_session.expose())?;
    h.web_logout(b_session.expose())?;
    let _ = h.unban(LOCKOUT_FROM);
    let _ = h
        .exec_signal(&session.handle, hostel_core::Signal::Kill)
        .await;
    let _ = h.exec_finish(&session.handle).await;
    let _ = stop.send(());
    let _ = server.await;
    h.token_revoke(&token_name)?;
    result
}

async fn try_moves(
    port: u16,
    given: &Given<'_>,
    id: &str,
    b: &TenantName,
    secret: &str,
) -> Result<Vec<MoveResult>, CliError> {
    let (viewer, link) = (given.viewer, given.link);
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

    // 200 connections held open from one address, as a flood would (#13).
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(c) = tokio::net::TcpStream::connect(&base).await {
            held.push(c);
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut open = 0;
    for c in &held {
        let mut probe = [0u8; 1];
        // A connection the daemon closed reads end-of-file at once; an open one would block.
        match tokio::time::timeout(std::time::Duration::from_millis(20), c.peek(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            _ => open += 1,
        }
    }
    drop(held);
    results.push(outcome(
        "hold 200 connections to the API from one address",
        "outside",
        open == 200,
        format!("{open} of 200 held open"),
    ));

    // Session fixation: a page of another path or a sibling origin plants B's session cookie
    // beside A's own (the browser sends the planted one first).
    let page = no_redirects
        .get(format!("http://{base}/portal"))
        .header(
            "cookie",
            format!(
                "hostel_session={}; hostel_session={}",
                given.b_session, given.a_session
            ),
        )
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = page.status();
    let body = page.text().await.unwrap_or_default();
    let as_b = body.contains(&format!("<h1>{b}</h1>"));
    results.push(outcome(
        "sign A's browser in as B with a planted session cookie",
        "outside",
        as_b,
        format!(
            "{status}: {}",
            if as_b { "B's portal" } else { "not B's portal" }
        ),
    ));

    // Lockout: failing A's sign-in from one address (a proxy many tenants share) until the
    // ban, then B signs in from the same address.
    let shared = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(LOCKOUT_FROM)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let origin = format!("http://{base}");
    for _ in 0..given.ban_after.max(1) {
        shared
            .post(format!("{origin}/login"))
            .header("origin", &origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name={}&password=not+the+password", given.a))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    let b_in = shared
        .post(format!("{origin}/login/link/{}", given.lockout_link))
        .header("origin", &origin)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    results.push(outcome(
        "lock B out by failing A's sign-in from B's address",
        "outside",
        !b_in.status().is_redirection(),
        format!(
            "after {} failures as A, B's sign-in answered {}",
            given.ban_after,
            b_in.status()
        ),
    ));
    // A page of B's app registering a service worker: on the origin B's apps share with
    // hostel, its scope could take over every path.
    let b_cookie = format!("hostel_session={}", given.b_session);
    let sw = no_redirects
        .get(format!("http://{base}/u/{b}/jupyter/sw.js"))
        .header("cookie", &b_cookie)
        .header("service-worker", "script")
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let sw_status = sw.status();
    results.push(outcome(
        "register a service worker from B's app page on hostel's origin",
        "outside",
        sw_status != reqwest::StatusCode::FORBIDDEN,
        format!("the worker script answered {sw_status}"),
    ));

    // An app's page (here hostel's own error page under /u/) framed by another site, or
    // sniffed into a script.
    let framed = no_redirects
        .get(format!("http://{base}/u/{b}/jupyter/"))
        .header("cookie", &b_cookie)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let header = |n: &str| {
        framed
            .headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (xfo, nosniff) = (header("x-frame-options"), header("x-content-type-options"));
    results.push(outcome(
        "frame B's app page from another site, or have it sniffed",
        "outside",
        xfo.is_empty() || nosniff != "nosniff",
        format!("X-Frame-Options {xfo:?}, X-Content-Type-Options {nosniff:?}"),
    ));

    // DNS rebinding: a page of another site whose name resolves to this host posts hostel's
    // sign-in form with its own name as Host and Origin.
    let rebound = no_redirects
        .post(format!("http://{base}/login/link/{}", given.link))
        .header("host", "rebound.example")
        .header("origin", "http://rebound.example")
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let rebound_status = rebound.status();
    results.push(outcome(
        "sign in through a rebound name of another site (Host and Origin its own)",
        "outside",
        signed_in(&rebound),
        format!("the form answered {rebound_status}"),
    ));
    Ok(results)
}
