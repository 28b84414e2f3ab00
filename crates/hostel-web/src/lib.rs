//! hostel's HTTP API: every tenant operation as REST+JSON for admins and programs (an agent's
//! harness, a CI job), with health, readiness, Prometheus metrics and an OpenAPI 3 document
//! generated from the handlers (`/api/openapi.json`); and the web gateway on the same listener:
//! the tenants' portal, terminal and apps (`portal`, `terminal`, `apps`) and the admin
//! dashboard (`dashboard`).
//!
//! Handlers are thin: parse into core types, call one `Hostel` method, render. Errors, bodies
//! that do not parse included, are `{code, message, hint}` with the status that fits the code;
//! a 500 body says nothing internal (the detail is logged). Every `/api` call needs `Authorization: Bearer <token>`; viewers may
//! only read tenants' metadata:
//! each route declares the action it performs (`x-hostel-action` in the OpenAPI document) and
//! the service grants or refuses it ([`hostel_service::Hostel::authorize`]). This crate never talks to the engine or the store but through `hostel-service`.
//! Start reading at [`router`].

mod admin;
mod apps;
mod assets;
mod auth;
mod charts;
mod conn;
mod dashboard;
mod error;
mod files;
mod json;
mod portal;
mod snapshots;
mod tenants;
mod terminal;
pub mod tls;
mod transfer;
mod ws;

pub use conn::{ConnLimits, serve as serve_with};
pub use error::ApiError;
pub use ws::{Control, control as control_frame};

use auth::BearerScheme;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use hostel_service::Hostel;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The hostel instance.
    pub hostel: Arc<Hostel>,
    /// The daemon serving the API, for `/api/status`.
    daemon: Option<Arc<hostel_api::DaemonStatus>>,
    /// The secret the daemon leaves for the local CLI (root-only file): it is an admin
    /// credential, and its caller names itself with `X-Hostel-Actor`.
    local_token: Option<hostel_core::Secret<Arc<str>>>,
    /// Whether session cookies get `Secure` (served over TLS).
    secure_cookies: bool,
    /// The tenants' web apps' addresses and the client that proxies to them.
    apps: apps::AppProxy,
    /// The `Host` names forms and WebSockets may name (empty: any).
    hosts: Arc<[String]>,
    /// `[http] domain`: each tenant app on an origin of its own below it.
    domain: Option<Arc<str>>,
}

impl AppState {
    /// The API of `hostel` without a daemon behind it (tests, tools).
    pub fn new(hostel: Arc<Hostel>) -> Self {
        AppState {
            daemon: None,
            local_token: None,
            secure_cookies: false,
            apps: apps::AppProxy::new(hostel.clone()),
            hosts: own_hosts(&hostel),
            domain: hostel.config().http.domain.as_deref().map(Arc::from),
            hostel,
        }
    }

    /// The API as `hostel serve` runs it: with its status and the local CLI's secret.
    pub fn for_daemon(
        hostel: Arc<Hostel>,
        daemon: hostel_api::DaemonStatus,
        local_token: String,
    ) -> Self {
        AppState {
            daemon: Some(Arc::new(daemon)),
            local_token: Some(hostel_core::Secret::new(local_token.into())),
            secure_cookies: false,
            apps: apps::AppProxy::new(hostel.clone()),
            hosts: own_hosts(&hostel),
            domain: hostel.config().http.domain.as_deref().map(Arc::from),
            hostel,
        }
    }

    /// Also accepts `Host` names for the addresses the daemon listens on (`127.0.0.1:8080`,
    /// and `localhost:8080` for a loopback one), besides `[http] hosts`.
    pub fn serving(mut self, listeners: &[std::net::SocketAddr]) -> Self {
        let mut hosts: Vec<String> = self.hosts.to_vec();
        for a in listeners {
            hosts.push(a.to_string());
            if a.ip().is_loopback() {
                hosts.push(format!("localhost:{}", a.port()));
            }
        }
        self.hosts = hosts.into();
        self
    }

    /// Marks session cookies `Secure`: the web gateway is served over TLS.
    pub fn over_tls(mut self) -> Self {
        self.secure_cookies = true;
        self
    }

    /// The scheme browsers reach hostel with.
    fn scheme(&self) -> &'static str {
        if self.secure_cookies { "https" } else { "http" }
    }

    fn detail(&self, info: &hostel_service::TenantInfo) -> hostel_api::TenantDetail {
        hostel_api::TenantDetail::new(info, self.hostel.config().lifecycle.idle_stop_secs)
    }
}

/// `[http] hosts`, and `[http] domain` itself when set (its apps' origins are not hostel's
/// own: forms there are the apps' business).
fn own_hosts(hostel: &Hostel) -> Arc<[String]> {
    let http = &hostel.config().http;
    let mut hosts = http.hosts.clone();
    hosts.extend(http.domain.clone());
    hosts.into()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "hostel", description = "Isolated, persistent workspaces for many tenants"),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Everything on one listener: the API, the admin dashboard and the tenants' web gateway.
pub fn router(state: AppState) -> Router {
    app(state, Serves::All)
}

/// The API and the admin dashboard only, for a daemon whose tenants' gateway has a listener
/// (an origin) of its own (`--web-listen`).
pub fn api_router(state: AppState) -> Router {
    app(state, Serves::Api)
}

/// The tenants' web gateway only: sign-in, portal, terminal, apps.
pub fn web_router(state: AppState) -> Router {
    app(state, Serves::Web)
}

/// What one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    All,
    Api,
    Web,
}

fn app(state: AppState, serves: Serves) -> Router {
    let mut r = Router::new();
    if serves != Serves::Web {
        // Metrics describe every tenant: never on the tenants' own listener.
        r = r
            .merge(api(&state))
            .merge(admin_pages())
            .route("/metrics", get(metrics));
    }
    if serves != Serves::Api {
        r = r
            .merge(pages())
            .route("/u/{tenant}/terminal/ws", get(terminal::socket))
            .route("/u/{tenant}/{app}", get(apps::to_slash))
            .route("/u/{tenant}/{app}/", any(apps::root))
            .route("/u/{tenant}/{app}/{*rest}", any(apps::below));
    }
    let r = r
        .route("/assets/{file}", get(assets::asset))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found);
    // Under `[http] domain`, a request for an app's own origin goes to that app and nowhere
    // else, whatever its path: hostel's pages are never served there.
    let r = if serves != Serves::Api && state.domain.is_some() {
        r.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            apps::by_origin,
        ))
    } else {
        r
    };
    r.layer(axum::middleware::from_fn(conn::request_scope))
        .with_state(state)
}

/// The API's routes and its OpenAPI document, built from the same handler definitions.
fn api(state: &AppState) -> Router<AppState> {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tenants::list_tenants, tenants::create_tenant))
        .routes(routes!(
            tenants::get_tenant,
            tenants::set_tenant,
            tenants::delete_tenant
        ))
        .routes(routes!(tenants::tenant_history))
        .routes(routes!(tenants::host_history))
        .routes(routes!(tenants::start_tenant))
        .routes(routes!(tenants::stop_tenant))
        .routes(routes!(tenants::exec))
        .routes(routes!(tenants::list_keys, tenants::add_keys))
        .routes(routes!(tenants::remove_key))
        .routes(routes!(tenants::list_ports, tenants::publish_port))
        .routes(routes!(tenants::unpublish_port))
        .routes(routes!(
            snapshots::list_snapshots,
            snapshots::create_snapshot
        ))
        .routes(routes!(snapshots::restore_snapshot))
        .routes(routes!(snapshots::delete_snapshot))
        .routes(routes!(snapshots::set_schedule))
        .routes(routes!(transfer::export_tenant))
        .routes(routes!(transfer::import_tenant))
        .routes(routes!(tenants::set_password))
        .routes(routes!(tenants::create_login_link))
        .routes(routes!(files::put_file, files::get_file))
        .routes(routes!(admin::list_images))
        .routes(routes!(admin::build_image))
        .routes(routes!(admin::check))
        .routes(routes!(admin::doctor_find, admin::doctor_run))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::audit_verify))
        .routes(routes!(admin::list_bans, admin::add_ban))
        .routes(routes!(admin::list_shares, admin::add_share))
        .routes(routes!(admin::remove_share))
        .routes(routes!(admin::remove_ban))
        .routes(routes!(admin::list_tokens, admin::create_token))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(admin::status))
        .routes(routes!(ws::exec_ws))
        .split_for_parts();
    // Every route declares the action it performs in its OpenAPI operation; the token check
    // grants or refuses that action. Only on matched routes: an unknown path is a plain 404,
    // not a token check.
    let gate = auth::Gate::new(state.clone(), auth::RouteActions::from_doc(&doc));
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        gate,
        auth::require_token,
    ));
    let doc = Arc::new(openapi_paths(doc));
    Router::new().merge(api).route(
        "/api/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
}

/// The tenants' pages: sign-in, the portal and the terminal, with the headers that keep other
/// sites' content out.
fn pages() -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route("/", get(portal::home))
        .route("/login", get(portal::login_form).post(portal::login))
        .route("/login/app", get(apps::login_for_app))
        .route("/logout", post(portal::logout))
        .route(
            "/login/link/{token}",
            get(portal::login_link_confirm).post(portal::login_link),
        )
        .route("/portal", get(portal::portal))
        .route("/portal/start", post(portal::start))
        .route("/portal/stop", post(portal::stop))
        .route("/u/{tenant}/terminal/", get(terminal::page_handler))
        .route("/u/{tenant}/terminal", get(terminal::to_slash))
        .layer(axum::middleware::from_fn(portal::headers))
}

/// The admin dashboard's pages, with the same headers.
fn admin_pages() -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route("/admin", get(dashboard::dashboard))
        .route("/admin/login", post(dashboard::login))
        .route("/admin/logout", post(dashboard::logout))
        .route("/admin/usage", get(dashboard::usage))
        .route("/admin/tenants", post(dashboard::create))
        .route(
            "/admin/tenants/{name}/{action}",
            post(dashboard::tenant_action),
        )
        .route("/admin/bans", post(dashboard::ban))
        .route("/admin/bans/remove", post(dashboard::unban))
        .layer(axum::middleware::from_fn(portal::headers))
}

/// Finishes the generated document: axum writes a rest-of-path parameter `{*path}` where
/// OpenAPI knows only `{path}`, and every `/api` operation can answer with the error body for
/// each error code (the token check and the shared validation apply to all of them), which the
/// per-handler annotations need not repeat.
fn openapi_paths(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let errors = [
        ("400", "invalid input: a bad name, path, size, body"),
        ("401", "no, unknown or revoked token"),
        (
            "403",
            "a viewer token on a change, or a banned client address",
        ),
        ("404", "no such tenant, file or image"),
        ("409", "the tenant exists, or another command works on it"),
        ("500", "internal error (the daemon's log has the detail)"),
        (
            "503",
            "the container engine does not answer, or the host lacks room",
        ),
    ];
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(k, mut item)| {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (status, what) in errors {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(what)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
            (k.replace("{*", "{"), item)
        })
        .collect();
    doc
}

/// Any path the API does not have.
async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        hostel_core::ErrorCode::NotFound,
        format!("no such route: {}", uri.path()),
        Some("see /api/openapi.json for the routes"),
    )
}

/// The process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The engine and the store answer: the daemon can serve requests.
async fn readyz(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    s.hostel.ready().await?;
    Ok("ready\n")
}

/// Prometheus text format. Without credentials, only aggregates: tenant counts by state, the
/// version, audited events by kind, operation latencies. The families labelled by tenant need
/// a token (or client certificate) whose role may read metadata.
async fn metrics(
    State(s): State<AppState>,
    request: axum::extract::Request,
) -> Result<impl IntoResponse, ApiError> {
    let credentials = request.headers().contains_key(header::AUTHORIZATION)
        || request
            .extensions()
            .get::<tls::ClientCert>()
            .is_some_and(|c| !c.0.is_empty());
    let per_tenant = if credentials {
        let (actor, role) = auth::identify(&s, &request)?;
        s.hostel.authorize(
            &actor,
            role,
            hostel_core::Action::ReadMetadata,
            "GET /metrics",
        )?;
        true
    } else {
        false
    };
    let tenants = s.hostel.list().await?;
    let mut text = String::from(
        "# HELP hostel_tenants Tenants by workspace state.\n# TYPE hostel_tenants gauge\n",
    );
    for state in ["running", "stopped", "deleted"] {
        let n = tenants.iter().filter(|t| t.state.as_str() == state).count();
        text.push_str(&format!("hostel_tenants{{state=\"{state}\"}} {n}\n"));
    }
    text.push_str(&format!(
        "# HELP hostel_build_info hostel's version.\n# TYPE hostel_build_info gauge\nhostel_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    text.push_str(&s.hostel.metrics_text(per_tenant));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    ))
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    conn::serve(listener, app, None, ConnLimits::default(), shutdown).await
}
