//! The API in process, through the Router as a tower Service, against the fake engine.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hostel_core::Role;
use hostel_core::config::Config;
use hostel_runtime::fake::FakeRuntime;
use hostel_runtime::storage::DirStorage;
use hostel_service::{Hostel, Paths};
use hostel_store::Store;
use hostel_web::{AppState, router};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbY7kwAdHmtH85Bxt9xpZhqZDkUDHAlfX7EjiWRN0CI alice@laptop";

struct Api {
    _dir: tempfile::TempDir,
    fake: FakeRuntime,
    hostel: Arc<Hostel>,
    admin: String,
    viewer: String,
}

fn api() -> Api {
    api_with(Config::default())
}

fn api_with(config: Config) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    paths.create_dirs().unwrap();
    let fake = FakeRuntime::new();
    fake.add_image(
        "hostel-workspace:latest",
        BTreeMap::from([("io.hostel.image.version".to_owned(), "v1".to_owned())]),
    );
    fake.add_image("hostel-workspace:v1", BTreeMap::new());
    // The file API's download script says what it found on its first line, then sends the bytes; any
    // other command echoes itself.
    fake.on_exec(|_, req| {
        if req.cmd.iter().any(|a| a.contains("exec cat --")) {
            return (0, b"file\nnotes\n".to_vec(), Vec::new());
        }
        let mut out = req.cmd.join(" ").into_bytes();
        out.push(b'\n');
        (0, out, Vec::new())
    });
    let storage = Arc::new(DirStorage::new(paths.users()));
    let hostel = Arc::new(
        Hostel::new(
            paths,
            config,
            Arc::new(fake.clone()),
            storage,
            Store::open_in_memory().unwrap(),
            "test",
        )
        .unwrap(),
    );
    let admin = hostel.token_create("ci", Role::Admin).unwrap().into_inner();
    let viewer = hostel
        .token_create("dash", Role::Viewer)
        .unwrap()
        .into_inner();
    Api {
        _dir: dir,
        fake,
        hostel,
        admin,
        viewer,
    }
}

/// The secret a daemon leaves for the local CLI, in these tests.
const LOCAL: &str = "local-secret-for-tests";

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        self.request(method, uri, &headers, body).await
    }

    async fn request(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        self.request_from(None, method, uri, headers, body).await
    }

    /// A GET with `token` from the client address `peer`.
    async fn get_from(
        &self,
        peer: &str,
        uri: &str,
        token: &str,
    ) -> (StatusCode, serde_json::Value) {
        let auth = format!("Bearer {token}");
        self.request_from(Some(peer), "GET", uri, &[("authorization", &auth)], None)
            .await
    }

    async fn request_from(
        &self,
        peer: Option<&str>,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(p) = peer {
            req = req.extension(axum::extract::ConnectInfo(
                p.parse::<std::net::SocketAddr>().unwrap(),
            ));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let daemon = hostel_api::DaemonStatus {
            pid: 42,
            version: "test".into(),
            ssh_listen: "127.0.0.1:2222".into(),
            http_listen: "127.0.0.1:8080".into(),
            host_key: "SHA256:test".into(),
            open_sessions: 0,
        };
        let resp = router(AppState::for_daemon(
            self.hostel.clone(),
            daemon,
            LOCAL.into(),
        ))
        .oneshot(req)
        .await
        .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
        (status, value)
    }
}

/// Regression (#13): a 500 said "see the daemon's log" with nothing to find it by. Every
/// response names its request; a 5xx body says the same id, which the log lines carry.
#[tokio::test]
async fn issue_13_a_server_error_names_its_request_id() {
    let a = api();
    a.fake.set_reachable(false);
    let req = Request::get("/api/tenants")
        .header("authorization", format!("Bearer {}", a.admin))
        .body(Body::empty())
        .unwrap();
    let resp = router(AppState::new(a.hostel.clone()))
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{id}");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "engine_unreachable");
    assert_eq!(body["request_id"], id.as_str());
    // A client error names its request in the header only.
    a.fake.set_reachable(true);
    let (s, body) = a
        .call("GET", "/api/tenants/ghost", Some(&a.admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body.get("request_id"), None);
}

#[tokio::test]
async fn tokens_gate_every_api_call() {
    let a = api();
    let (s, body) = a.call("GET", "/api/tenants", None, None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (s, _) = a
        .call("GET", "/api/tenants", Some("hostel_wrong"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = a.call("GET", "/api/tenants", Some(&a.viewer), None).await;
    assert_eq!((s, body), (StatusCode::OK, serde_json::json!([])));
    let new = serde_json::json!({"name": "alice", "keys": [KEY]});
    let (s, body) = a
        .call("POST", "/api/tenants", Some(&a.viewer), Some(new.clone()))
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("permission_denied"))
    );
    a.hostel.token_revoke("ci").unwrap();
    let (s, _) = a
        .call("POST", "/api/tenants", Some(&a.admin), Some(new))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(a.hostel.list().await.unwrap().len(), 0);
    // Health, readiness and metrics need no token.
    assert_eq!(
        a.call("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(a.call("GET", "/readyz", None, None).await.0, StatusCode::OK);
    let (s, m) = a.call("GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let m = m.as_str().unwrap();
    assert!(m.contains("hostel_tenants{state=\"running\"} 0"), "{m}");
    // The missing, the wrong and the revoked token above are audited, counted auth failures.
    assert!(
        m.contains("hostel_audit_events_total{kind=\"api.auth.v1\",outcome=\"denied\"} 3"),
        "{m}"
    );
}

#[tokio::test]
async fn sandbox_create_exec_delete_and_errors() {
    let a = api();
    let t = Some(a.admin.as_str());
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants",
            t,
            Some(serde_json::json!({"name": "alice", "keys": [KEY], "memory": "256M"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["memory"].as_str()),
        (Some("running"), Some("256MiB"))
    );
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants/alice/exec",
            t,
            Some(serde_json::json!({"command": ["echo", "hi"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"exit_code": 0, "stdout": "echo hi\n", "stderr": "", "timed_out": false, "truncated": false})
    );
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants",
            t,
            Some(serde_json::json!({"name": "Bob_1", "keys": [KEY]})),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    assert!(body["hint"].is_string());
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants",
            t,
            Some(serde_json::json!({"name": "alice", "keys": [KEY]})),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (s, _) = a.call("GET", "/api/tenants/ghost", t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants/alice/exec",
            t,
            Some(serde_json::json!({"command": []})),
        )
        .await;
    assert_eq!(
        (s, body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("command is empty"))
    );
    assert_eq!(
        a.call("POST", "/api/tenants/alice/stop", t, None).await.1["state"],
        "stopped"
    );
    assert_eq!(
        a.call("POST", "/api/tenants/alice/start", t, None).await.1["state"],
        "running"
    );
    let (s, gone) = a.call("DELETE", "/api/tenants/alice", t, None).await;
    assert_eq!(
        (s, gone["previous_state"].as_str(), gone["state"].as_str()),
        (StatusCode::OK, Some("running"), Some("deleted"))
    );
    assert_eq!(
        a.call("GET", "/api/tenants/alice", t, None).await.1["state"],
        "deleted"
    );
    assert_eq!(
        a.call("DELETE", "/api/tenants/alice?purge=true", t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.call("GET", "/api/tenants/alice", t, None).await.0,
        StatusCode::NOT_FOUND
    );
    // Mutating calls are audited with the token that made them.
    let calls: Vec<_> = a
        .hostel
        .audit_log()
        .query(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.event.kind == "api.call.v1")
        .collect();
    assert!(calls.len() >= 6, "{calls:?}");
    assert!(calls.iter().all(|r| r.event.actor == "api:ci"));
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let a = api();
    let (s, doc) = a.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        [
            "/api/audit",
            "/api/audit/verify",
            "/api/bans",
            "/api/bans/{address}",
            "/api/check",
            "/api/doctor",
            "/api/history",
            "/api/images",
            "/api/images/build",
            "/api/import",
            "/api/shares",
            "/api/shares/{name}",
            "/api/status",
            "/api/tenants",
            "/api/tenants/{name}",
            "/api/tenants/{name}/exec",
            "/api/tenants/{name}/exec/ws",
            "/api/tenants/{name}/export",
            "/api/tenants/{name}/files/{path}",
            "/api/tenants/{name}/history",
            "/api/tenants/{name}/keys",
            "/api/tenants/{name}/keys/{fingerprint}",
            "/api/tenants/{name}/login-links",
            "/api/tenants/{name}/password",
            "/api/tenants/{name}/ports",
            "/api/tenants/{name}/ports/{port}",
            "/api/tenants/{name}/snapshot-schedule",
            "/api/tenants/{name}/snapshots",
            "/api/tenants/{name}/snapshots/{snapshot}",
            "/api/tenants/{name}/snapshots/{snapshot}/restore",
            "/api/tenants/{name}/start",
            "/api/tenants/{name}/stop",
            "/api/tokens",
            "/api/tokens/{name}"
        ]
    );
    for schema in [
        "Tenant",
        "TenantDetail",
        "NewTenant",
        "ExecBody",
        "ExecResult",
        "ErrorBody",
        "TenantChange",
        "Change",
        "Transition",
        "Key",
        "AuditEntry",
        "DaemonStatus",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn bad_bodies_and_unknown_routes_get_the_error_body() {
    let a = api();
    let t = Some(a.admin.as_str());
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants",
            t,
            Some(serde_json::json!({"name": 7})),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("request body: "),
        "{body}"
    );
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants",
            t,
            Some(serde_json::json!({"name": "eph", "keys": [KEY], "ephemeral": true})),
        )
        .await;
    assert_eq!(
        (s, body["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("ephemeral needs a ttl: the home goes when the time is up")
        )
    );
    let (s, body) = a
        .call(
            "POST",
            "/api/tenants",
            t,
            Some(serde_json::json!({"name": "ttl", "keys": [KEY], "ttl": "1h", "ephemeral": true})),
        )
        .await;
    assert_eq!(
        (s, body["ephemeral"].as_bool()),
        (StatusCode::CREATED, Some(true)),
        "{body}"
    );
    assert!(body["expires_at"].is_string(), "{body}");
    let (s, body) = a.call("GET", "/api/nothing-here", None, None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, body) = a
        .call(
            "PUT",
            "/api/tenants/alice/files/a/../../etc/passwd",
            t,
            None,
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input")),
        "{body}"
    );
    let (s, _) = a.call("GET", "/api/tenants", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn set_changes_quotas_and_policies_through_patch() {
    let a = api();
    let t = Some(a.admin.as_str());
    let body = serde_json::json!({"name": "alice", "keys": [KEY]});
    assert_eq!(
        a.call("POST", "/api/tenants", t, Some(body)).await.0,
        StatusCode::CREATED
    );
    let change = serde_json::json!({"pids": 128, "ttl": "2h", "autostart": true});
    let (s, out) = a.call("PATCH", "/api/tenants/alice", t, Some(change)).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let fields: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["pids", "expires", "autostart"]);
    let (_, info) = a.call("GET", "/api/tenants/alice", t, None).await;
    assert_eq!(
        (info["pids"].as_u64(), info["autostart"].as_bool()),
        (Some(128), Some(true))
    );
    assert!(info["expires_at"].is_string(), "{info}");
    let (s, err) = a
        .call(
            "PATCH",
            "/api/tenants/alice",
            t,
            Some(serde_json::json!({"ttl": "none", "ephemeral": true})),
        )
        .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    let (s, _) = a
        .call(
            "PATCH",
            "/api/tenants/alice",
            Some(a.viewer.as_str()),
            Some(serde_json::json!({"pids": 64})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn keys_bans_and_tokens_are_managed_over_the_api() {
    let a = api();
    let t = Some(a.admin.as_str());
    let body = serde_json::json!({"name": "alice", "keys": [KEY]});
    a.call("POST", "/api/tenants", t, Some(body)).await;
    let other =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMhq0NaYZbuTK8J5ZxP+VC8V6nL3SFaSRXuHx7UyB2bE bob@desk";
    let (s, keys) = a
        .call(
            "POST",
            "/api/tenants/alice/keys",
            t,
            Some(serde_json::json!({"keys": [other]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{keys}");
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let fp = keys[1]["fingerprint"].as_str().unwrap().to_owned();
    let encoded = fp
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace(':', "%3A");
    let (s, _) = a
        .call(
            "DELETE",
            &format!("/api/tenants/alice/keys/{encoded}"),
            t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, keys) = a.call("GET", "/api/tenants/alice/keys", t, None).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);

    let (s, ban) = a
        .call(
            "POST",
            "/api/bans",
            t,
            Some(serde_json::json!({"address": "203.0.113.7", "duration": "1h"})),
        )
        .await;
    assert_eq!(
        (s, ban["address"].as_str()),
        (StatusCode::CREATED, Some("203.0.113.7"))
    );
    let (s, bad) = a
        .call(
            "POST",
            "/api/bans",
            t,
            Some(serde_json::json!({"address": "nowhere"})),
        )
        .await;
    assert_eq!(
        (s, bad["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    assert_eq!(
        a.call("GET", "/api/bans", t, None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.call("DELETE", "/api/bans/203.0.113.7", t, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.call("DELETE", "/api/bans/203.0.113.7", t, None).await.0,
        StatusCode::NOT_FOUND
    );

    let (s, made) = a
        .call(
            "POST",
            "/api/tokens",
            t,
            Some(serde_json::json!({"name": "agent", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let secret = made["token"].as_str().unwrap().to_owned();
    assert_eq!(
        a.call("GET", "/api/tenants", Some(&secret), None).await.0,
        StatusCode::OK
    );
    let (_, tokens) = a.call("GET", "/api/tokens", t, None).await;
    assert!(
        !tokens.to_string().contains(&secret),
        "secrets are never listed"
    );
    assert_eq!(
        a.call("DELETE", "/api/tokens/agent", t, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.call("GET", "/api/tenants", Some(&secret), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_local_secret_is_an_admin_that_names_its_user() {
    let a = api();
    let (s, status) = a
        .request(
            "GET",
            "/api/status",
            &[("authorization", &format!("Bearer {LOCAL}"))],
            None,
        )
        .await;
    assert_eq!((s, status["pid"].as_u64()), (StatusCode::OK, Some(42)));
    let body = serde_json::json!({"name": "bob", "keys": [KEY]});
    let (s, _) = a
        .request(
            "POST",
            "/api/tenants",
            &[
                ("authorization", &format!("Bearer {LOCAL}")),
                ("x-hostel-actor", "cli:alice"),
            ],
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A made-up actor is not taken; the secret is still needed.
    a.request(
        "GET",
        "/api/tenants",
        &[
            ("authorization", &format!("Bearer {LOCAL}")),
            ("x-hostel-actor", "api:ci"),
        ],
        None,
    )
    .await;
    let (s, _) = a
        .request(
            "DELETE",
            "/api/tenants/bob",
            &[
                ("authorization", "Bearer not-the-secret"),
                ("x-hostel-actor", "cli:alice"),
            ],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, audit) = a
        .call("GET", "/api/audit?failed=false", Some(&a.admin), None)
        .await;
    let actors: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "api.call.v1")
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["cli:alice"]);
    let (s, v) = a
        .call("GET", "/api/audit/verify", Some(&a.viewer), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["records"].as_u64().unwrap() >= 3, "{v}");
}

#[tokio::test]
async fn guessing_tokens_bans_the_address_like_failed_ssh_logins() {
    let a = api();
    let attacker = "192.0.2.9:40000";
    // [ssh] ban_address_after_failures, 50 by default, counts the API's failures too.
    for _ in 0..50 {
        let (s, _) = a
            .get_from(
                attacker,
                "/api/tenants",
                "hostel_guess0000000000000000000000000000",
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, body) = a.get_from(attacker, "/api/tenants", &a.admin).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("permission_denied")),
        "a banned address gets nothing, even with a good token: {body}"
    );
    assert_eq!(
        a.get_from("192.0.2.10:1", "/api/tenants", &a.admin).await.0,
        StatusCode::OK,
        "another address is unaffected"
    );
    // The local CLI's secret still gets through, and an admin lifts the ban.
    let local = format!("Bearer {LOCAL}");
    let (s, _) = a
        .request_from(
            Some(attacker),
            "DELETE",
            "/api/bans/192.0.2.9",
            &[("authorization", &local)],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        a.get_from(attacker, "/api/tenants", &a.admin).await.0,
        StatusCode::OK
    );
    let bans: Vec<_> = a
        .hostel
        .audit_log()
        .query(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.event.kind == "ssh.ban.v1")
        .collect();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].event.actor, "api");
}

/// A form POST (or a GET with `body` None) to the web pages, with headers; the raw response.
async fn web(
    a: &Api,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> axum::response::Response {
    web_on(a, "hostel.test", method, uri, headers, form).await
}

/// [`web`] with another `Host`.
async fn web_on(
    a: &Api,
    host: &str,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> axum::response::Response {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host)
        .extension(axum::extract::ConnectInfo(
            "198.51.100.4:5000".parse::<std::net::SocketAddr>().unwrap(),
        ));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match form {
        Some(f) => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(f.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    router(AppState::new(a.hostel.clone()))
        .oneshot(req)
        .await
        .unwrap()
}

async fn text(r: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn tenants_sign_in_to_the_portal_with_a_web_password() {
    let a = api();
    let t = Some(a.admin.as_str());
    let body = serde_json::json!({"name": "alice", "keys": [KEY]});
    a.call("POST", "/api/tenants", t, Some(body)).await;
    let (s, _) = a
        .call(
            "PUT",
            "/api/tenants/alice/password",
            t,
            Some(serde_json::json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, err) = a
        .call(
            "PUT",
            "/api/tenants/alice/password",
            t,
            Some(serde_json::json!({"password": "short"})),
        )
        .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );

    // The form, no session yet.
    let r = web(&a, "GET", "/portal", &[], None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    let r = web(&a, "GET", "/login", &[], None).await;
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let page = text(r).await;
    assert!(
        page.contains("<form class=\"stack\" method=\"post\" action=\"/login\">"),
        "{page}"
    );
    assert!(
        !page.contains("<script") && !page.contains("http"),
        "no script, nothing from other hosts"
    );

    // Wrong, then right; a form from another site is refused.
    let r = web(
        &a,
        "POST",
        "/login",
        &[],
        Some("name=alice&password=wrong+password+1"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(text(r).await.contains("Wrong tenant name or password."));
    let r = web(
        &a,
        "POST",
        "/login",
        &[("origin", "https://evil.example")],
        Some("name=alice&password=correct+horse+battery"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = web(
        &a,
        "POST",
        "/login",
        &[("origin", "http://hostel.test")],
        Some("name=alice&password=correct+horse+battery"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/portal");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("hostel_session=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();

    let r = web(&a, "GET", "/portal", &[("cookie", &cookie)], None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = text(r).await;
    assert!(
        page.contains("<h1>alice</h1>") && page.contains("running"),
        "{page}"
    );
    let r = web(
        &a,
        "GET",
        "/portal",
        &[("cookie", "hostel_session=forged")],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Signing out ends the session; the old cookie opens nothing.
    let r = web(&a, "POST", "/logout", &[("cookie", &cookie)], Some("")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = web(&a, "GET", "/portal", &[("cookie", &cookie)], None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// Signs `name` in with a fresh password; returns the cookie.
async fn sign_in(a: &Api, name: &str) -> String {
    let t = Some(a.admin.as_str());
    let body = serde_json::json!({"name": name, "keys": [KEY]});
    a.call("POST", "/api/tenants", t, Some(body)).await;
    let pw = serde_json::json!({"password": "correct horse battery"});
    let path = format!("/api/tenants/{name}/password");
    a.call("PUT", &path, t, Some(pw)).await;
    let form = format!("name={name}&password=correct+horse+battery");
    let r = web(a, "POST", "/login", &[], Some(&form)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_tenant_session_opens_only_its_own_terminal_and_apps() {
    let a = api();
    let alice = sign_in(&a, "alice").await;
    sign_in(&a, "bob").await;
    let c = [("cookie", alice.as_str())];

    // The terminal page, with its embedded scripts.
    let r = web(&a, "GET", "/u/alice/terminal/", &c, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = text(r).await;
    assert!(
        page.contains("src=\"/assets/xterm.js\"") && page.contains("data-tenant=\"alice\""),
        "{page}"
    );
    let r = web(&a, "GET", "/u/alice/terminal", &c, None).await;
    assert_eq!(r.headers()["location"], "/u/alice/terminal/");
    for asset in [
        "xterm.js",
        "addon-fit.js",
        "terminal.js",
        "xterm.css",
        "hostel.css",
    ] {
        let r = web(&a, "GET", &format!("/assets/{asset}"), &[], None).await;
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        assert!(text(r).await.len() > 100, "{asset}");
    }
    assert_eq!(
        web(&a, "GET", "/assets/nosuch.js", &[], None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Without a session: to the sign-in page; as alice, bob's pages are refused.
    let r = web(&a, "GET", "/u/alice/terminal/", &[], None).await;
    assert_eq!(r.headers()["location"], "/login");
    let r = web(&a, "GET", "/u/alice/jupyter/lab", &[], None).await;
    assert_eq!(r.headers()["location"], "/login");
    for path in [
        "/u/bob/terminal/",
        "/u/bob/jupyter/",
        "/u/bob/code/static/x.js",
        "/u/bob/desktop/websockify",
    ] {
        let r = web(&a, "GET", path, &c, None).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let r = web(
        &a,
        "GET",
        "/u/bob/terminal/ws",
        &[
            ("cookie", alice.as_str()),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A page of another site may not open alice's terminal with her cookie.
    let r = web(
        &a,
        "GET",
        "/u/alice/terminal/ws",
        &[
            ("cookie", alice.as_str()),
            ("origin", "https://evil.example"),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let t = Some(a.admin.as_str());
    let kinds = |audit: &serde_json::Value, kind: &str| -> Vec<serde_json::Value> {
        let all = audit.as_array().unwrap().iter();
        all.filter(|e| e["kind"] == kind).cloned().collect()
    };
    let (_, audit) = a.call("GET", "/api/audit", t, None).await;
    let denied = kinds(&audit, "web.denied.v1");
    assert!(
        denied.len() == 5 && denied.iter().all(|e| e["actor"] == "web:alice"),
        "{audit}"
    );

    // The fake image offers no apps: a clear 404, and no app buttons on the portal.
    let r = web(&a, "GET", "/u/alice/jupyter/lab", &c, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(text(r).await.contains("has no JupyterLab"));
    let r = web(&a, "GET", "/u/alice/nosuch/", &c, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Start and stop from the portal, audited as the tenant.
    let r = web(&a, "POST", "/portal/stop", &c, Some("")).await;
    assert_eq!(r.headers()["location"], "/portal");
    let page = text(web(&a, "GET", "/portal", &c, None).await).await;
    assert!(
        page.contains("<strong id=\"state\">stopped</strong>") && page.contains("/portal/start"),
        "{page}"
    );
    assert!(page.contains("href=\"/u/alice/terminal/\""), "{page}");
    assert!(!page.contains("/u/alice/jupyter/"), "{page}");
    let r = web(&a, "POST", "/portal/start", &c, Some("")).await;
    assert_eq!(r.headers()["location"], "/portal");
    let page = text(web(&a, "GET", "/portal", &c, None).await).await;
    assert!(page.contains(">running</strong>"), "{page}");
    let (_, audit) = a.call("GET", "/api/audit", t, None).await;
    assert_eq!(
        kinds(&audit, "workspace.stop.v1")[0]["actor"],
        "web:alice",
        "{audit}"
    );
}

/// Signs in to the dashboard with `token`; returns the admin cookie.
async fn admin_sign_in(a: &Api, token: &str) -> String {
    let r = web(
        a,
        "POST",
        "/admin/login",
        &[],
        Some(&format!("token={token}")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/admin"),
        "{set}"
    );
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_dashboard_needs_a_token_and_a_viewer_only_reads() {
    let a = api();
    let page = text(web(&a, "GET", "/admin", &[], None).await).await;
    assert!(page.contains("API token"), "{page}");
    let r = web(&a, "POST", "/admin/login", &[], Some("token=hostel_wrong")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let admin = admin_sign_in(&a, &a.admin).await;
    let c = [("cookie", admin.as_str())];
    let form = format!(
        "name=dash1&key={}&image=&cpus=&memory=256M&disk=",
        KEY.replace(' ', "+").replace('@', "%40")
    );
    let r = web(&a, "POST", "/admin/tenants", &c, Some(&form)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin?done=created%20dash1");
    let page = text(web(&a, "GET", "/admin", &c, None).await).await;
    assert!(page.contains("<tr data-tenant=\"dash1\">"), "{page}");
    assert!(
        page.contains("<td>tenant.create.v1</td><td>api:ci</td>"),
        "{page}"
    );
    let r = web(&a, "GET", "/admin/usage", &c, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("\"name\":\"dash1\""));

    // Bad input is a page with the reason; purge needs the name typed again.
    let r = web(
        &a,
        "POST",
        "/admin/tenants/dash1/quota",
        &c,
        Some("memory=lots"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("Back to the dashboard"));
    let r = web(
        &a,
        "POST",
        "/admin/tenants/dash1/purge",
        &c,
        Some("confirm=x"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = web(&a, "POST", "/admin/tenants/dash1/stop", &c, Some("")).await;
    assert_eq!(r.headers()["location"], "/admin?done=stopped%20dash1");

    // A viewer sees the page but changes nothing; a form from another site is refused.
    let viewer = admin_sign_in(&a, &a.viewer).await;
    let v = [("cookie", viewer.as_str())];
    let page = text(web(&a, "GET", "/admin", &v, None).await).await;
    assert!(
        page.contains("dash1") && page.contains(" disabled"),
        "{page}"
    );
    let r = web(&a, "POST", "/admin/tenants/dash1/start", &v, Some("")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = web(
        &a,
        "POST",
        "/admin/tenants/dash1/start",
        &[
            ("cookie", admin.as_str()),
            ("origin", "https://evil.example"),
        ],
        Some(""),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = web(
        &a,
        "POST",
        "/admin/tenants/dash1/purge",
        &c,
        Some("confirm=dash1"),
    )
    .await;
    assert_eq!(r.headers()["location"], "/admin?done=purged%20dash1");

    // Revoking the token ends its browser session at once.
    let t = Some(a.admin.as_str());
    let (s, _) = a.call("DELETE", "/api/tokens/dash", t, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let page = text(web(&a, "GET", "/admin", &v, None).await).await;
    assert!(page.contains("API token"), "{page}");
}

/// A second key, for the key routes.
const KEY2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN+EY41ILIevb3kveUL1G6Z7GkPQKOkLeEHZSsqr3JaN alice@desk";

/// A third key, to add.
const KEY3: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICo81taxmD+ay+19Qd5Q+u6pX1GBp+f4kK/WwpFkXBkg carol@x";

/// An instance with something for every route to act on: tenant alice with a key and a
/// published port, a spare token and a ban.
async fn api_with_fixtures() -> (Api, String) {
    let mut config = Config::default();
    config.http.domain = Some("hostel.test".to_owned());
    let a = api_with(config);
    let mut req = hostel_service::CreateRequest::new(
        "alice".parse().unwrap(),
        vec![KEY.parse().unwrap(), KEY2.parse().unwrap()],
    );
    req.image = None;
    a.hostel.create(req, &hostel_service::Quiet).await.unwrap();
    a.hostel.token_create("spare", Role::Viewer).unwrap();
    a.hostel
        .ban("203.0.113.7".parse().unwrap(), "test", None, None)
        .unwrap();
    a.hostel
        .port_publish(&"alice".parse().unwrap(), 8000, false)
        .unwrap();
    a.hostel
        .snapshot_create(&"alice".parse().unwrap(), Some("s0".parse().unwrap()))
        .await
        .unwrap();
    a.hostel
        .share_add(&"data".parse().unwrap(), "/usr/share/doc", None)
        .await
        .unwrap();
    let fp = a.hostel.key_list(&"alice".parse().unwrap()).unwrap()[0]
        .key
        .fingerprint
        .clone();
    (a, fp)
}

/// Regression (#12): a viewer token ran commands as any tenant through the exec WebSocket,
/// because roles were checked by HTTP method and an upgrade is a GET. Every route in the
/// OpenAPI document declares an action; each role gets exactly what it is granted.
#[tokio::test]
async fn issue_12_every_route_grants_each_role_only_its_actions() {
    let (_, doc) = api().call("GET", "/api/openapi.json", None, None).await;
    let mut seen = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let action: hostel_core::Action = op["x-hostel-action"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares no action"))
                .parse()
                .unwrap();
            seen.push(format!("{} {path} {action}", method.to_uppercase()));
            let body = match (method.as_str(), path.as_str()) {
                ("post", "/api/tenants") => Some(serde_json::json!({"name": "bob", "keys": [KEY]})),
                ("patch", _) => Some(serde_json::json!({"pids": 300})),
                ("put", "/api/tenants/{name}/password") => {
                    Some(serde_json::json!({"password": "a long enough passphrase"}))
                }
                ("post", "/api/tenants/{name}/login-links") => Some(serde_json::json!({})),
                ("post", "/api/tenants/{name}/keys") => Some(serde_json::json!({"keys": [KEY3]})),
                ("post", "/api/tenants/{name}/ports") => Some(serde_json::json!({"port": 9000})),
                ("post", "/api/tenants/{name}/snapshots") => {
                    Some(serde_json::json!({"name": "s1"}))
                }
                ("put", "/api/tenants/{name}/snapshot-schedule") => {
                    Some(serde_json::json!({"every": "daily", "keep": 3}))
                }
                ("post", "/api/tenants/{name}/exec") => {
                    Some(serde_json::json!({"command": ["true"]}))
                }
                ("put", _) => Some(serde_json::json!("some bytes")),
                // A real build takes minutes: an unknown profile shows the call got past the
                // role check to the service's validation.
                ("post", "/api/images/build") => Some(serde_json::json!({"profile": "gpu"})),
                ("post", "/api/doctor") => Some(serde_json::json!({"fix": false})),
                ("post", "/api/bans") => Some(serde_json::json!({"address": "198.51.100.9"})),
                ("post", "/api/shares") => {
                    Some(serde_json::json!({"name": "more", "path": "/usr/share/doc"}))
                }
                ("post", "/api/tokens") => {
                    Some(serde_json::json!({"name": "another", "role": "viewer"}))
                }
                _ => None,
            };
            // A fresh instance per route, so no call depends on another's effect; the viewer
            // goes first, and what it is refused must leave everything as it was.
            let (a, fp) = api_with_fixtures().await;
            for role in [Role::Viewer, Role::Admin] {
                // The policy, restated here rather than asked of the code under test: admins
                // may do everything, viewers read metadata only.
                let granted = role == Role::Admin || action.as_str() == "read_metadata";
                let uri = path
                    .replace(
                        "{name}",
                        if path.starts_with("/api/tokens") {
                            "spare"
                        } else if path.starts_with("/api/shares") {
                            "data"
                        } else {
                            "alice"
                        },
                    )
                    .replace("{path}", "notes.txt")
                    .replace("{fingerprint}", &fp)
                    .replace("{port}", "8000")
                    .replace("{snapshot}", "s0")
                    .replace("{address}", "203.0.113.7");
                let token = match role {
                    Role::Admin => &a.admin,
                    Role::Viewer => &a.viewer,
                };
                let (status, answer) = a
                    .call(&method.to_uppercase(), &uri, Some(token), body.clone())
                    .await;
                let call = format!("{role} {method} {uri}: {answer}");
                if path.ends_with("/exec/ws") && granted {
                    // Not an upgrade request, so past the role check the upgrade is refused;
                    // the real socket is tested below.
                    assert_eq!(status, StatusCode::BAD_REQUEST, "{call}");
                } else if (path == "/api/images/build" || path == "/api/import") && granted {
                    // No archive in the body: refused by the service, past the role check.
                    assert_eq!(answer["code"], "invalid_input", "{call}");
                } else if granted {
                    assert!(status.is_success(), "{status} {call}");
                } else {
                    assert_eq!(
                        (status, answer["code"].as_str()),
                        (StatusCode::FORBIDDEN, Some("permission_denied")),
                        "{call}"
                    );
                    // Refused before anything ran: nothing changed, nothing ran.
                    let ev = a.hostel.audit_log().query(&Default::default()).unwrap();
                    let last = &ev.last().unwrap().event;
                    assert_eq!(
                        (last.kind.as_str(), last.outcome, last.actor.as_str()),
                        ("api.call.v1", hostel_core::Outcome::Denied, "api:dash"),
                        "{call}"
                    );
                }
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "DELETE /api/bans/{address} change",
            "DELETE /api/shares/{name} change",
            "DELETE /api/tenants/{name} change",
            "DELETE /api/tenants/{name}/keys/{fingerprint} change",
            "DELETE /api/tenants/{name}/ports/{port} change",
            "DELETE /api/tenants/{name}/snapshots/{snapshot} change",
            "DELETE /api/tokens/{name} change",
            "GET /api/audit read_metadata",
            "GET /api/audit/verify read_metadata",
            "GET /api/bans read_metadata",
            "GET /api/check read_metadata",
            "GET /api/doctor read_metadata",
            "GET /api/history read_metadata",
            "GET /api/images read_metadata",
            "GET /api/shares read_metadata",
            "GET /api/status read_metadata",
            "GET /api/tenants read_metadata",
            "GET /api/tenants/{name} read_metadata",
            "GET /api/tenants/{name}/exec/ws exec",
            "GET /api/tenants/{name}/export read_tenant_data",
            "GET /api/tenants/{name}/files/{path} read_tenant_data",
            "GET /api/tenants/{name}/history read_metadata",
            "GET /api/tenants/{name}/keys read_metadata",
            "GET /api/tenants/{name}/ports read_metadata",
            "GET /api/tenants/{name}/snapshots read_metadata",
            "GET /api/tokens read_metadata",
            "PATCH /api/tenants/{name} change",
            "POST /api/bans change",
            "POST /api/doctor change",
            "POST /api/images/build change",
            "POST /api/import change",
            "POST /api/shares change",
            "POST /api/tenants change",
            "POST /api/tenants/{name}/exec exec",
            "POST /api/tenants/{name}/keys change",
            "POST /api/tenants/{name}/login-links change",
            "POST /api/tenants/{name}/ports change",
            "POST /api/tenants/{name}/snapshots change",
            "POST /api/tenants/{name}/snapshots/{snapshot}/restore change",
            "POST /api/tenants/{name}/start change",
            "POST /api/tenants/{name}/stop change",
            "POST /api/tokens change",
            "PUT /api/tenants/{name}/files/{path} change",
            "PUT /api/tenants/{name}/password change",
            "PUT /api/tenants/{name}/snapshot-schedule change",
        ]
    );
}

/// Regression (#12), over a real socket: the exec WebSocket refuses a viewer's upgrade with
/// 403, and runs an admin's command.
#[tokio::test]
async fn issue_12_a_viewer_token_cannot_open_the_exec_websocket() {
    use futures_util::StreamExt;
    let (a, _) = api_with_fixtures().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = router(AppState::new(a.hostel.clone()));
    tokio::spawn(hostel_web::serve(listener, app, std::future::pending()));
    let connect = |token: &str| {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://127.0.0.1:{port}/api/tenants/alice/exec/ws?command=id&tty=false"),
            )
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    match connect(&a.viewer).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("a viewer's upgrade: {:?}", other.map(|_| ())),
    }
    let (mut ws, _) = connect(&a.admin).await.unwrap();
    let mut last = String::new();
    while let Some(Ok(m)) = ws.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            last = t.to_string();
        }
    }
    assert_eq!(last, r#"{"exit_code":0}"#);
    let denied: Vec<_> = a
        .hostel
        .audit_log()
        .query(&Default::default())
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.outcome == hostel_core::Outcome::Denied)
        .map(|e| (e.actor, e.detail.get("call").cloned()))
        .collect();
    assert_eq!(
        denied,
        [(
            "api:dash".to_owned(),
            Some("GET /api/tenants/{name}/exec/ws".to_owned())
        )]
    );
}

/// Regression (#12): `/metrics` named every tenant with its usage to anyone, on the tenants'
/// web listener too. Without credentials it now shows aggregates only; per-tenant series need
/// a token, and the web listener serves no metrics at all.
#[tokio::test]
async fn issue_12_metrics_name_tenants_only_to_a_token() {
    let (a, _) = api_with_fixtures().await;
    // An open session gives alice a per-tenant series.
    let _session = a
        .hostel
        .exec(
            &"alice".parse().unwrap(),
            hostel_service::ExecOptions {
                cmd: vec!["sleep".into(), "60".into()],
                ..Default::default()
            },
            &hostel_service::Quiet,
        )
        .await
        .unwrap();
    let (s, m) = a.call("GET", "/metrics", None, None).await;
    let m = m.as_str().unwrap().to_owned();
    assert_eq!(s, StatusCode::OK);
    assert!(m.contains("hostel_tenants{state=\"running\"} 1"), "{m}");
    assert!(!m.contains("alice"), "{m}");
    assert!(!m.contains("hostel_open_sessions"), "{m}");
    let (s, m) = a.call("GET", "/metrics", Some(&a.viewer), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        m.as_str()
            .unwrap()
            .contains("hostel_open_sessions{tenant=\"alice\"} 1"),
        "{m}"
    );
    let (s, m) = a.call("GET", "/metrics", Some("hostel_wrong"), None).await;
    assert_eq!(
        (s, m["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let web = hostel_web::web_router(AppState::new(a.hostel.clone()))
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(web.status(), StatusCode::NOT_FOUND);
}

/// Regression (#12): secrets held in the API's state and bodies showed in their `Debug`, so
/// any log or panic that printed them leaked them.
#[tokio::test]
async fn issue_12_secrets_never_show_in_debug() {
    let a = api();
    let daemon = hostel_api::DaemonStatus {
        pid: 1,
        version: "test".into(),
        ssh_listen: String::new(),
        http_listen: String::new(),
        host_key: String::new(),
        open_sessions: 0,
    };
    let state = AppState::for_daemon(a.hostel.clone(), daemon, LOCAL.into());
    let password: hostel_api::NewPassword =
        serde_json::from_str(r#"{"password": "a long and secret phrase"}"#).unwrap();
    let made = hostel_api::CreatedToken {
        name: "ci".into(),
        role: "admin".into(),
        token: a.admin.clone().into(),
    };
    let debug = format!("{state:?} {password:?} {made:?}");
    for secret in [LOCAL, "a long and secret phrase", a.admin.as_str()] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    // The token's owner still gets it in the body that creates it.
    assert!(serde_json::to_string(&made).unwrap().contains(&a.admin));
}

/// Regression (#12): calls without a token, with 60 KB paths, wrote 60 KB audit records as
/// fast as they came. Such calls now count toward a ban, and each record they leave, the
/// banned address's refusals included, is bounded.
#[tokio::test]
async fn issue_12_calls_without_a_token_are_bounded_and_banned() {
    let a = api();
    let flooder = "192.0.2.77:4000";
    let long = format!("/api/tenants/{}", "a".repeat(60_000));
    let log = a.hostel.audit_log().path().to_owned();
    for _ in 0..50 {
        let (s, _) = a
            .request_from(Some(flooder), "GET", "/api/tenants", &[], None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _) = a
        .request_from(Some(flooder), "GET", "/api/tenants", &[], None)
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "banned after 50 calls without a token ([ssh] ban_address_after_failures)"
    );
    let before = std::fs::metadata(&log).unwrap().len();
    a.request_from(Some(flooder), "GET", &long, &[], None).await;
    let grew = std::fs::metadata(&log).unwrap().len() - before;
    assert!(
        grew < 2_000,
        "one refused 60 KB path added {grew} bytes to the audit log"
    );
}

/// Regression (#12): forms were checked only for an `Origin` naming the `Host` they were sent
/// to, which a page of another site whose name resolves to this host satisfies. The `Host`
/// must also be one of hostel's own names.
#[tokio::test]
async fn issue_12_forms_on_a_name_not_of_this_hostel_are_refused() {
    let mut config = Config::default();
    config.http.hosts = vec!["hostel.example".to_owned()];
    let a = api_with(config);
    let post = |host: &str| {
        Request::post("/login")
            .header("host", host)
            .header("origin", format!("http://{host}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("name=alice&password=not+the+password"))
            .unwrap()
    };
    let app = router(AppState::new(a.hostel.clone()));
    let rebound = app.clone().oneshot(post("evil.example")).await.unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    let body = text(rebound).await;
    assert!(body.contains("not a name of this hostel"), "{body}");
    // hostel's own name gets to the password check.
    let own = app.oneshot(post("hostel.example:8443")).await.unwrap();
    assert_eq!(own.status(), StatusCode::UNAUTHORIZED);
}

/// Regression (#12): a page of a tenant's app, on the origin it shared with hostel's pages and
/// other tenants' apps, registered a service worker for `/`, planted cookies and read what
/// was typed into hostel's sign-in. Under `[http] domain` each app has an origin of its own,
/// which a browser signs in to with a one-time ticket from hostel's origin; hostel's pages
/// and other tenants' apps are never served there.
#[tokio::test]
async fn issue_12_apps_live_on_origins_of_their_own_under_a_domain() {
    let mut config = Config::default();
    config.http.domain = Some("hostel.test".to_owned());
    let a = api_with(config);
    let alice = sign_in(&a, "alice").await;
    let bob = sign_in(&a, "bob").await;
    let as_alice = [("cookie", alice.as_str())];
    let app_host = "jupyter--alice.hostel.test:8080";

    // hostel's origin sends an app to the app's own origin, path kept.
    let r = web_on(
        &a,
        "hostel.test:8080",
        "GET",
        "/u/alice/jupyter/lab?x=1",
        &as_alice,
        None,
    )
    .await;
    assert_eq!(
        r.headers()["location"],
        "http://jupyter--alice.hostel.test:8080/u/alice/jupyter/lab?x=1"
    );
    // The portal links there.
    let portal =
        text(web_on(&a, "hostel.test:8080", "GET", "/portal", &as_alice, None).await).await;
    assert!(!portal.contains("href=\"/u/alice/jupyter/"), "{portal}");

    // The app's origin without its own session: to hostel's origin for a ticket.
    let r = web_on(&a, app_host, "GET", "/u/alice/jupyter/lab", &as_alice, None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        "http://hostel.test:8080/login/app?to=jupyter--alice.hostel.test%3A8080%2Fu%2Falice%2Fjupyter%2Flab"
    );
    let login_app = to.trim_start_matches("http://hostel.test:8080");
    // Bob's session gets no ticket for alice's app; no session gets the sign-in page.
    let r = web(&a, "GET", login_app, &[("cookie", bob.as_str())], None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = web(&a, "GET", login_app, &[], None).await;
    assert_eq!(r.headers()["location"], "/login");
    let r = web(&a, "GET", login_app, &as_alice, None).await;
    let ticket_url = r.headers()["location"].to_str().unwrap().to_owned();
    let ticket_path = ticket_url
        .strip_prefix("http://jupyter--alice.hostel.test:8080")
        .unwrap_or_else(|| panic!("{ticket_url}"));
    assert!(
        ticket_path.starts_with("/.hostel/ticket?t="),
        "{ticket_path}"
    );

    // The ticket works once, on its own origin only, and sets a cookie for that host alone.
    let r = web_on(
        &a,
        "code--alice.hostel.test:8080",
        "GET",
        ticket_path,
        &[],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = web(&a, "GET", login_app, &as_alice, None).await;
    let ticket_path = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("http://jupyter--alice.hostel.test:8080")
        .to_owned();
    let r = web_on(&a, app_host, "GET", &ticket_path, &[], None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/u/alice/jupyter/lab");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("hostel_app=") && set.contains("HttpOnly"),
        "{set}"
    );
    assert!(!set.to_ascii_lowercase().contains("domain"), "{set}");
    let app_cookie = set.split(';').next().unwrap().to_owned();
    let r = web_on(&a, app_host, "GET", &ticket_path, &[], None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a ticket works once");

    // With its session, the app's origin serves the app and nothing of hostel's: its pages,
    // the API and other tenants' paths are not there.
    let with_app = [("cookie", app_cookie.as_str())];
    let r = web_on(&a, app_host, "GET", "/", &with_app, None).await;
    assert_eq!(r.headers()["location"], "/u/alice/jupyter/lab");
    for path in [
        "/login",
        "/admin",
        "/portal",
        "/api/tenants",
        "/u/bob/jupyter/",
        "/u/alice/terminal/",
    ] {
        let r = web_on(&a, app_host, "GET", path, &with_app, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Alice's app session is no session on bob's app, nor on hostel's origin.
    let r = web_on(
        &a,
        "jupyter--bob.hostel.test:8080",
        "GET",
        "/u/bob/jupyter/",
        &with_app,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = web(&a, "GET", "/portal", &with_app, None).await;
    assert_eq!(r.headers()["location"], "/login");

    // A port: unpublished is not found; owner-only needs the session; public needs none.
    let port_host = "8000--alice.hostel.test:8080";
    let r = web_on(&a, port_host, "GET", "/", &[], None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    a.hostel
        .port_publish(&"alice".parse().unwrap(), 8000, false)
        .unwrap();
    let r = web_on(&a, port_host, "GET", "/", &[], None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    a.hostel
        .port_publish(&"alice".parse().unwrap(), 8000, true)
        .unwrap();
    // Let through: the proxy tries the workspace's (the fake's loopback) address, where
    // nothing listens.
    let r = web_on(&a, port_host, "GET", "/", &[], None).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        text(r)
            .await
            .contains("port 8000 in the workspace does not answer")
    );

    // A cookie planted beside hostel's own (another path, a sibling origin, sent first) is
    // ignored when it is no session, and spoils both when it is another tenant's.
    let junk = format!("hostel_session=planted; {alice}");
    let r = web(&a, "GET", "/portal", &[("cookie", junk.as_str())], None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fixed = format!("{bob}; {alice}");
    let r = web(&a, "GET", "/portal", &[("cookie", fixed.as_str())], None).await;
    assert_eq!(r.headers()["location"], "/login");
}

/// Over TLS the session cookie carries the `__Host-` prefix: the browser keeps it only as this
/// host set it, so a page of a sibling origin cannot plant one for hostel's origin, and a
/// plain `hostel_session` (which it can plant) counts for nothing.
#[tokio::test]
async fn over_tls_the_session_cookie_is_host_only_by_name() {
    let a = api();
    sign_in(&a, "alice").await;
    let send = |req: Request<Body>| {
        router(AppState::new(a.hostel.clone()).over_tls())
            .oneshot(req)
            .into_future()
    };
    let login = Request::post("/login")
        .header("host", "hostel.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("name=alice&password=correct+horse+battery"))
        .unwrap();
    let r = send(login).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("__Host-hostel_session=")
            && set.contains("; Secure")
            && set.contains("Path=/;"),
        "{set}"
    );
    let token = set
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let portal = |cookie: String| {
        Request::get("/portal")
            .header("host", "hostel.test")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap()
    };
    let r = send(portal(format!("__Host-hostel_session={token}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(portal(format!("hostel_session={token}")))
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login");
}

/// #18: the charts come from the reconciler's looks: over the API (any token that reads), on
/// the dashboard (a chart per tenant and the host's) and in the portal (the tenant's own);
/// none of it asks the engine for usage.
#[tokio::test]
async fn issue_18_charts_come_from_the_history_without_the_engine() {
    let a = api();
    let t = Some(a.admin.as_str());
    for name in ["alice", "bob"] {
        let body = serde_json::json!({"name": name, "keys": [KEY], "memory": "512M"});
        let (status, _) = a.call("POST", "/api/tenants", t, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut state = hostel_service::ReconcileState::default();
    a.hostel.reconcile(&mut state, 30).await.unwrap();
    // Looks are seconds apart (a second look within the same second adds nothing).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    a.hostel.reconcile(&mut state, 30).await.unwrap();
    // From here, a usage question to the engine fails the test.
    a.fake.fail("stats", "the charts must not ask the engine");
    let v = Some(a.viewer.as_str());
    let (status, h) = a
        .call("GET", "/api/tenants/alice/history?range=1h", v, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["range"], "1h");
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{h}");
    assert_eq!(points[1]["memory_bytes"], f64::from(16u32 << 20));
    assert_eq!(points[1]["running"], 1.0);
    let (status, h) = a
        .call("GET", "/api/history?range=7d&points=10", v, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["points"][0]["running"], 2.0, "{h}");
    let (status, e) = a.call("GET", "/api/history?range=2h", v, None).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    for bad in ["0", "-1", "1001", "many"] {
        let (status, _) = a
            .call("GET", &format!("/api/history?points={bad}"), v, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "points={bad}");
    }
    let (status, _) = a.call("GET", "/api/tenants/carol/history", v, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let viewer = admin_sign_in(&a, &a.viewer).await;
    let c = [("cookie", viewer.as_str())];
    let page = text(web(&a, "GET", "/admin?range=24h", &c, None).await).await;
    assert!(page.contains("id=\"host-charts\""), "{page}");
    assert!(page.contains("aria-label=\"CPU, last 24h:"), "{page}");
    assert!(
        page.contains("<a href=\"/admin?range=24h\" aria-current=\"page\">"),
        "{page}"
    );
    for name in ["alice", "bob"] {
        let row = page
            .split(&format!("<tr data-tenant=\"{name}\">"))
            .nth(1)
            .unwrap();
        let row = row.split("</tr>").next().unwrap();
        assert!(
            row.contains("aria-label=\"Memory, last 1h: 16MiB of 512MiB\""),
            "{row}"
        );
        assert!(row.contains("<polyline class=\"cpu\""), "{row}");
    }
    let r = web(&a, "GET", "/admin/usage", &c, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("\"memory\":\"16MiB / 512MiB\""));

    // The portal shows the tenant its own charts (its live figures come from `info`, which
    // does ask the engine).
    a.fake.clear_failures();
    let alice = sign_in(&a, "alice").await;
    let c = [("cookie", alice.as_str())];
    let page = text(web(&a, "GET", "/portal?range=7d", &c, None).await).await;
    assert!(page.contains("id=\"usage-charts\""), "{page}");
    assert!(
        page.contains("aria-label=\"Memory, last 7d: 16MiB of 512MiB\""),
        "{page}"
    );
    assert!(page.contains("aria-label=\"Disk, last 7d:"), "{page}");
}
