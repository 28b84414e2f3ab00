//! `hostel bench api`: the agent-sandbox path through the HTTP API against the root's engine's
//! API doing the same over its socket, in one run. Nothing here is a test.
//!
//! The API runs in this process on 127.0.0.1 with a bench token (revoked at the end); requests
//! go over real TCP with a minimal HTTP/1.1 client (one connection per request, as a harness
//! without keep-alive would). The baseline creates, starts and execs `echo hi` as root in a
//! container of the same image through the engine's runtime (bollard on Docker, the REST API on
//! Incus), which is what the gateway itself does minus the home, the quota, the store, the audit
//! and the wait for the tenant's user.

use super::{BENCH_KEY, fail, median, ms, plain_spec};
use crate::error::CliError;
use crate::output::{line, table};
use hostel_core::Role;
use hostel_runtime::{ExecRequest, IdMapping, Runtime};
use hostel_service::Hostel;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on a fresh connection; returns the status and the body.
async fn request(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Result<(u16, String), CliError> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| fail(format!("connect: {e}")))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `hostel bench api`.
pub async fn api_bench(h: Arc<Hostel>, rounds: usize, parallel: usize) -> Result<(), CliError> {
    let id = format!("{:x}", std::process::id());
    let token_name = format!("bench-{id}");
    let token = h.token_create(&token_name, Role::Admin)?.into_inner();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail(e.to_string()))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port();
    let server = tokio::spawn(hostel_web::serve(
        listener,
        hostel_web::router(hostel_web::AppState::new(h.clone())),
        std::future::pending(),
    ));
    let engine = crate::wiring::engine_runtime(&h.config().engine);
    let ids = h.engine_ids().await?;
    let mut names = Vec::new();
    let mut containers = Vec::new();
    let ctx = Ctx {
        h: &h,
        port,
        token: &token,
        engine: engine.as_ref(),
        ids,
        id: &id,
    };
    let result = measure(&ctx, rounds, parallel, &mut names, &mut containers).await;
    for n in &names {
        let _ = request(
            port,
            "DELETE",
            &format!("/api/tenants/{n}?purge=true"),
            &token,
            "",
        )
        .await;
    }
    for c in &containers {
        let _ = engine.remove(c).await;
    }
    server.abort();
    let _ = h.token_revoke(&token_name);
    result
}

/// What the measurements share.
struct Ctx<'a> {
    h: &'a Hostel,
    port: u16,
    token: &'a str,
    engine: &'a dyn Runtime,
    ids: IdMapping,
    id: &'a str,
}

/// Runs the timings; records what it made in `names` and `containers` for the cleanup.
async fn measure(
    ctx: &Ctx<'_>,
    rounds: usize,
    parallel: usize,
    names: &mut Vec<String>,
    containers: &mut Vec<String>,
) -> Result<(), CliError> {
    let Ctx {
        h,
        port,
        token,
        engine,
        ids,
        id,
    } = *ctx;
    let image = h
        .image_build(false, &hostel_service::Quiet)
        .await?
        .reference;
    let exec_body = r#"{"command": ["echo", "hi"]}"#;
    let (mut create_first, mut roundtrip, mut d_create_first, mut d_roundtrip) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let name = format!("bench-{id}-{i}");
        names.push(name.clone());
        let body = format!(
            r#"{{"name": "{name}", "keys": ["{BENCH_KEY}"], "memory": "256M", "disk": "256M"}}"#
        );
        let t = Instant::now();
        let (code, out) = request(port, "POST", "/api/tenants", token, &body).await?;
        if code != 201 {
            return Err(fail(format!("create {name}: {code} {out}")));
        }
        let (code, out) = request(
            port,
            "POST",
            &format!("/api/tenants/{name}/exec"),
            token,
            exec_body,
        )
        .await?;
        if code != 200 || !out.contains("\"stdout\":\"hi\\n\"") {
            return Err(fail(format!("exec {name}: {code} {out}")));
        }
        create_first.push(t.elapsed());
        let t = Instant::now();
        request(
            port,
            "POST",
            &format!("/api/tenants/{name}/exec"),
            token,
            exec_body,
        )
        .await?;
        roundtrip.push(t.elapsed());

        let cname = format!("hostel-bench-api-{id}-{i}");
        containers.push(cname.clone());
        let spec = plain_spec(&cname, &image, id, None, ids);
        let t = Instant::now();
        engine
            .create(&spec)
            .await
            .map_err(|e| fail(e.to_string()))?;
        engine
            .start(&cname)
            .await
            .map_err(|e| fail(e.to_string()))?;
        engine_echo(engine, &cname).await?;
        d_create_first.push(t.elapsed());
        let t = Instant::now();
        engine_echo(engine, &cname).await?;
        d_roundtrip.push(t.elapsed());
    }
    let ratio =
        |a: Duration, b: Duration| format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64().max(1e-9));
    let (cf, dcf, rt, drt) = (
        median(create_first),
        median(d_create_first),
        median(roundtrip),
        median(d_roundtrip),
    );
    let mut rows = vec![
        vec![
            "sandbox create -> first exec result".into(),
            ms(cf),
            ms(dcf),
            ratio(cf, dcf),
        ],
        vec![
            "exec round trip (echo hi)".into(),
            ms(rt),
            ms(drt),
            ratio(rt, drt),
        ],
    ];

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..parallel {
        let name = format!("bench-{id}-p{i}");
        names.push(name.clone());
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let body = format!(
                r#"{{"name": "{name}", "keys": ["{BENCH_KEY}"], "memory": "256M", "disk": "256M"}}"#
            );
            request(port, "POST", "/api/tenants", &token, &body)
                .await
                .map(|(c, _)| c == 201)
                .unwrap_or(false)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            ok += 1;
        }
    }
    rows.push(vec![
        format!("{parallel} sandboxes created in parallel: {ok}/{parallel} ok"),
        format!("{:.1} s to all ready", started.elapsed().as_secs_f64()),
        String::new(),
        String::new(),
    ]);
    line(&format!("hostel bench api: {rounds} rounds, image {image}"));
    let engine_column = format!(
        "{} API ms",
        h.config().engine.kind.as_str().to_ascii_uppercase()
    );
    table(
        &["MEASURE", "HOSTEL API ms", &engine_column, "RATIO"],
        &rows,
    );
    line("published agent-sandbox starts for comparison: E2B ~150 ms, Daytona <90 ms");
    Ok(())
}

async fn engine_echo(engine: &dyn Runtime, name: &str) -> Result<(), CliError> {
    use futures_util::StreamExt;
    let req = ExecRequest {
        cmd: vec!["echo".into(), "hi".into()],
        user: "root".into(),
        ..ExecRequest::default()
    };
    let mut s = engine
        .exec(name, &req)
        .await
        .map_err(|e| fail(e.to_string()))?;
    while s.output.next().await.is_some() {}
    s.control.wait().await.map_err(|e| fail(e.to_string()))?;
    Ok(())
}
