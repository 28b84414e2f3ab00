//! Use cases against the fake engine and plain-directory homes.

use super::*;
use futures_util::StreamExt;
use hostel_core::lifecycle::WorkspaceState;
use hostel_core::{ByteSize, ErrorCode, Outcome, QuotaChange, SshPublicKey, TenantName};
use hostel_runtime::fake::FakeRuntime;
use hostel_runtime::storage::{DirStorage, HomeStorage};
use hostel_runtime::{
    LABEL_IMAGE_VERSION, LABEL_INSTANCE, LABEL_MANAGED, LABEL_TENANT, LayerQuota,
};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbY7kwAdHmtH85Bxt9xpZhqZDkUDHAlfX7EjiWRN0CI alice@laptop";

struct Fixture {
    _dir: tempfile::TempDir,
    fake: FakeRuntime,
    storage: Arc<DirStorage>,
    filter: hostel_runtime::netfilter::RecordingFilter,
    hostel: Arc<Hostel>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    paths.create_dirs().unwrap();
    let fake = FakeRuntime::new();
    fake.add_image(
        "hostel-workspace:latest",
        BTreeMap::from([(LABEL_IMAGE_VERSION.to_owned(), "v1".to_owned())]),
    );
    fake.add_image("hostel-workspace:v1", BTreeMap::new());
    let storage = Arc::new(DirStorage::new(paths.users()));
    let hostel = Hostel::new(
        paths,
        Config::default(),
        Arc::new(fake.clone()),
        storage.clone(),
        Store::open_in_memory().unwrap(),
        "test",
    )
    .unwrap();
    let filter = hostel_runtime::netfilter::RecordingFilter::default();
    let hostel = hostel.with_packet_filter(Arc::new(filter.clone()));
    Fixture {
        _dir: dir,
        fake,
        storage,
        filter,
        hostel: Arc::new(hostel),
    }
}

fn name(s: &str) -> TenantName {
    s.parse().unwrap()
}

fn request(n: &str) -> CreateRequest {
    CreateRequest {
        memory: Some(ByteSize::mib(256)),
        ..CreateRequest::new(name(n), vec![KEY.parse::<SshPublicKey>().unwrap()])
    }
}

#[tokio::test]
async fn create_makes_home_and_running_workspace_on_current_image() {
    let f = fixture();
    let info = f.hostel.create(request("alice"), &Quiet).await.unwrap();
    assert_eq!(info.summary.state, WorkspaceState::Running);
    assert_eq!(info.summary.image, "hostel-workspace:v1");
    assert_eq!(info.summary.quota.memory, ByteSize::mib(256));
    assert_eq!(info.summary.quota.disk, ByteSize::gib(5));
    assert!(f.storage.exists(&name("alice")));
    let calls = f.fake.calls();
    assert!(
        calls.contains(&"create hostel-alice".to_owned()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"start hostel-alice".to_owned()),
        "{calls:?}"
    );
    let audit = f.hostel.audit_log().query(&Default::default()).unwrap();
    assert_eq!(audit.last().unwrap().event.kind, "tenant.create.v1");
}

#[tokio::test]
async fn failed_start_rolls_back_everything_it_made() {
    let f = fixture();
    f.fake.fail("start", "boom");
    let err = f.hostel.create(request("alice"), &Quiet).await.unwrap_err();
    assert_eq!(err.to_string(), "engine refused start: boom");
    assert_eq!(f.hostel.store().tenant(&name("alice")).unwrap(), None);
    assert!(!f.storage.exists(&name("alice")));
    assert_eq!(f.fake.list(&[]).await.unwrap(), vec![]);
    let audit = f.hostel.audit_log().query(&Default::default()).unwrap();
    assert_eq!(audit.last().unwrap().event.outcome, Outcome::Failed);
}

#[tokio::test]
async fn failed_create_never_deletes_a_home_that_existed() {
    let f = fixture();
    f.storage.ensure(&name("alice"), ByteSize::gib(1)).unwrap();
    let file = f.storage.home_path(&name("alice")).join("thesis.txt");
    std::fs::write(&file, "years of work").unwrap();
    f.fake.fail("create", "boom");
    f.hostel.create(request("alice"), &Quiet).await.unwrap_err();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "years of work");
}

#[tokio::test]
async fn second_create_of_a_name_is_a_conflict() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let err = f.hostel.create(request("alice"), &Quiet).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(err.to_string(), "tenant \"alice\" already exists");
}

#[tokio::test]
async fn missing_image_and_impossible_quota_are_refused_before_anything_is_made() {
    let f = fixture();
    let mut r = request("alice");
    r.image = Some("nope:1".into());
    let err = f.hostel.create(r, &Quiet).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(
        err.hint().unwrap(),
        "build it with `hostel image build` (or `scripts/up`)"
    );
    let mut r = request("alice");
    r.memory = Some(ByteSize::gib(64));
    let err = f.hostel.create(r, &Quiet).await.unwrap_err();
    assert_eq!(err.to_string(), "memory 64GiB: the host has only 8GiB");
    assert_eq!(f.hostel.store().tenants().unwrap(), vec![]);
    assert!(!f.fake.calls().iter().any(|c| c.starts_with("create")));
}

#[tokio::test]
async fn dead_engine_is_engine_unreachable_and_leaves_nothing() {
    let f = fixture();
    f.fake.set_reachable(false);
    let err = f.hostel.create(request("alice"), &Quiet).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::EngineUnreachable);
    assert!(err.hint().unwrap().contains("scripts/engine"));
    assert_eq!(f.hostel.store().tenants().unwrap(), vec![]);
}

#[tokio::test]
async fn delete_keeps_home_and_start_recreates() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    assert_eq!(
        f.hostel.delete(&name("alice")).await.unwrap(),
        WorkspaceState::Running
    );
    assert!(f.storage.exists(&name("alice")));
    assert_eq!(
        f.hostel.info(&name("alice")).await.unwrap().summary.state,
        WorkspaceState::Deleted
    );
    assert_eq!(
        f.hostel.start(&name("alice"), &Quiet).await.unwrap(),
        WorkspaceState::Deleted
    );
    assert_eq!(
        f.hostel.info(&name("alice")).await.unwrap().summary.state,
        WorkspaceState::Running
    );
}

#[tokio::test]
async fn purge_needs_yes_and_removes_everything() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let err = f.hostel.purge(&name("alice"), false).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(f.storage.exists(&name("alice")));
    f.hostel.purge(&name("alice"), true).await.unwrap();
    assert!(!f.storage.exists(&name("alice")));
    assert_eq!(f.hostel.store().tenant(&name("alice")).unwrap(), None);
    assert_eq!(f.fake.inspect("hostel-alice").await.unwrap(), None);
}

#[tokio::test]
async fn commands_on_a_half_made_tenant_conflict() {
    let f = fixture();
    f.hostel
        .store()
        .insert_tenant(
            &hostel_store::NewTenant {
                name: name("alice"),
                image: "hostel-workspace:v1".into(),
                quota: Config::default().defaults.quota(),
                keys: vec![KEY.parse().unwrap()],
                policy: hostel_core::policy::Policy::default(),
                egress: hostel_core::network::Egress::All,
                adopted_home: true,
            },
            chrono::Utc::now(),
        )
        .unwrap();
    let err = f.hostel.purge(&name("alice"), true).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(
        err.to_string(),
        "tenant \"alice\" is creating: another command is working on it"
    );
    let err = f.hostel.stop(&name("alice")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
}

#[tokio::test]
async fn set_applies_limits_live_and_image_at_next_start() {
    let f = fixture();
    f.fake.add_image("hostel-workspace:v2", BTreeMap::new());
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let change = QuotaChange {
        pids: Some(64),
        disk: Some(ByteSize::gib(8)),
        ..QuotaChange::default()
    };
    let out = f
        .hostel
        .set(
            &name("alice"),
            change,
            Some("hostel-workspace:v2"),
            None,
            Default::default(),
        )
        .await
        .unwrap();
    let summary: Vec<(&str, &str, &str, &str)> = out
        .iter()
        .map(|o| (o.field, o.from.as_str(), o.to.as_str(), o.applied))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("pids", "512", "64", "live"),
            ("disk", "5GiB", "8GiB", "live"),
            (
                "image",
                "hostel-workspace:v1",
                "hostel-workspace:v2",
                "next start (stop and start the workspace; the home is kept)"
            ),
        ]
    );
    let c = f.fake.inspect("hostel-alice").await.unwrap().unwrap();
    assert_eq!(c.limits.unwrap().pids, 64);
    assert_eq!(c.image, "hostel-workspace:v1");
    let info = f.hostel.info(&name("alice")).await.unwrap();
    assert!(info.stale);
    f.hostel.stop(&name("alice")).await.unwrap();
    f.hostel.start(&name("alice"), &Quiet).await.unwrap();
    let c = f.fake.inspect("hostel-alice").await.unwrap().unwrap();
    assert_eq!(c.image, "hostel-workspace:v2");
    let err = f
        .hostel
        .set(
            &name("alice"),
            QuotaChange::default(),
            None,
            None,
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
}

#[tokio::test]
async fn set_changes_policies_at_once_and_refuses_an_ephemeral_without_ttl() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let change =
        hostel_core::policy::PolicyChange::from_settings(Some("1h"), Some(true), None, Some("10m"))
            .unwrap();
    let out = f
        .hostel
        .set(&name("alice"), QuotaChange::default(), None, None, change)
        .await
        .unwrap();
    let fields: Vec<&str> = out.iter().map(|o| o.field).collect();
    assert_eq!(fields, vec!["expires", "ephemeral", "idle_stop"]);
    let p = f.hostel.info(&name("alice")).await.unwrap().policy;
    assert!(p.ephemeral && p.expires_at.is_some());
    assert_eq!(p.idle_stop_secs, Some(600));
    let clear =
        hostel_core::policy::PolicyChange::from_settings(Some("none"), None, None, None).unwrap();
    let err = f
        .hostel
        .set(&name("alice"), QuotaChange::default(), None, None, clear)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert_eq!(f.hostel.info(&name("alice")).await.unwrap().policy, p);
}

#[tokio::test]
async fn doctor_finds_and_fixes_drift_without_touching_homes() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.fake.remove_by_hand("hostel-alice");
    let mut ghost = spec_like("hostel-ghost");
    ghost.labels = BTreeMap::from([
        (LABEL_MANAGED.to_owned(), "1".to_owned()),
        (LABEL_TENANT.to_owned(), "ghost".to_owned()),
        (LABEL_INSTANCE.to_owned(), f.hostel.instance().to_owned()),
    ]);
    f.fake.create(&ghost).await.unwrap();
    f.storage.ensure(&name("orphan"), ByteSize::gib(1)).unwrap();
    let found = f.hostel.doctor(false).await.unwrap();
    let problems: Vec<(&str, &str, bool)> = found
        .iter()
        .map(|x| (x.subject.as_str(), x.problem.as_str(), x.fixed))
        .collect();
    assert_eq!(
        problems[0],
        (
            "hostel-ghost",
            "container has no tenant in the store",
            false
        )
    );
    assert_eq!(
        problems[1],
        ("alice", "workspace should run but does not", false)
    );
    assert_eq!(problems[2].0, "orphan");
    let fixed = f.hostel.doctor(true).await.unwrap();
    assert_eq!(fixed.iter().filter(|x| x.fixed).count(), 2);
    assert_eq!(f.fake.inspect("hostel-ghost").await.unwrap(), None);
    assert_eq!(
        f.fake.inspect("hostel-alice").await.unwrap().unwrap().state,
        WorkspaceState::Running
    );
    assert!(f.storage.exists(&name("orphan")));
    let again = f.hostel.doctor(false).await.unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
}

#[tokio::test]
async fn exec_wakes_a_stopped_workspace_and_returns_the_exit_code() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.hostel.stop(&name("alice")).await.unwrap();
    f.fake.on_exec(|_, req| {
        if req.cmd.first().map(String::as_str) == Some("false") {
            (1, vec![], b"nope\n".to_vec())
        } else {
            (0, req.user.clone().into_bytes(), vec![])
        }
    });
    let (code, out, _) = f
        .hostel
        .exec_capture(&name("alice"), &["whoami"])
        .await
        .unwrap();
    assert_eq!((code, out.as_slice()), (0, b"alice".as_slice()));
    let (code, _, err) = f
        .hostel
        .exec_capture(&name("alice"), &["false"])
        .await
        .unwrap();
    assert_eq!((code, err.as_slice()), (1, b"nope\n".as_slice()));
}

/// A command whose caller went away without waiting for it (a gateway that lost its client)
/// no longer counts as the tenant's activity once its handle is gone, so the idle stop still
/// comes, and its end is audited as abandoned; one waited for ends its activity once, and is
/// audited once, however many clones wait.
#[tokio::test]
async fn an_abandoned_exec_does_not_keep_the_workspace_busy() {
    let ends = |h: &Hostel| -> Vec<(Outcome, Option<String>)> {
        h.audit_log()
            .query(&Default::default())
            .unwrap()
            .into_iter()
            .filter(|r| r.event.kind == "workspace.exec_end.v1")
            .map(|r| (r.event.outcome, r.event.detail.get("ended").cloned()))
            .collect()
    };
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let opts = || crate::ExecOptions {
        cmd: vec!["true".into()],
        ..crate::ExecOptions::default()
    };
    let exec = f.hostel.exec(&name("alice"), opts(), &Quiet).await.unwrap();
    let copy = exec.handle.clone();
    assert_eq!(f.hostel.open_total(), 1);
    drop(exec);
    assert_eq!(f.hostel.open_total(), 1, "a clone still holds it");
    assert_eq!(ends(&f.hostel), []);
    drop(copy);
    assert_eq!(f.hostel.open_total(), 0);
    assert_eq!(
        ends(&f.hostel),
        [(Outcome::Failed, Some("abandoned".to_owned()))]
    );

    let exec = f.hostel.exec(&name("alice"), opts(), &Quiet).await.unwrap();
    let copy = exec.handle.clone();
    f.hostel.exec_finish(&exec.handle).await.unwrap();
    f.hostel.exec_finish(&copy).await.unwrap();
    assert_eq!(f.hostel.open_total(), 0);
    drop((exec, copy));
    assert_eq!(f.hostel.open_total(), 0);
    assert_eq!(
        ends(&f.hostel).len(),
        2,
        "the finished one is recorded once"
    );
    assert_eq!(ends(&f.hostel)[1], (Outcome::Ok, None));
}

#[tokio::test]
async fn each_tenant_gets_its_own_network_behind_the_packet_filter() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.hostel
        .create(
            CreateRequest {
                egress: Some(hostel_core::network::Egress::None),
                ..request("bob")
            },
            &Quiet,
        )
        .await
        .unwrap();
    // The rules went in before the first workspace, once.
    assert_eq!(f.filter.applied(), vec![f.hostel.filter_rules()]);
    let calls = f.fake.calls();
    let first_net = calls
        .iter()
        .position(|c| c == "network_create hostel-alice");
    let first_box = calls.iter().position(|c| c == "create hostel-alice");
    assert!(first_net.is_some() && first_net < first_box, "{calls:?}");
    let a = f
        .fake
        .network_inspect("hostel-alice")
        .await
        .unwrap()
        .unwrap();
    let b = f.fake.network_inspect("hostel-bob").await.unwrap().unwrap();
    assert_eq!((a.internal, b.internal), (false, true));
    assert_eq!(a.subnets, vec!["10.213.0.0/28".to_owned()]);
    assert_eq!(b.subnets, vec!["10.213.0.16/28".to_owned()]);
    assert!(a.bridge.as_deref().unwrap().starts_with("hsl"));
    assert_ne!(a.bridge, b.bridge);
    assert_eq!(
        f.hostel.info(&name("bob")).await.unwrap().egress,
        hostel_core::network::Egress::None
    );

    // Egress changes at the next start: the workspace and its network are made again.
    let out = f
        .hostel
        .set(
            &name("alice"),
            QuotaChange::default(),
            None,
            Some(hostel_core::network::Egress::None),
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(out[0].field, "egress");
    assert!(
        !f.fake
            .network_inspect("hostel-alice")
            .await
            .unwrap()
            .unwrap()
            .internal
    );
    f.hostel.stop(&name("alice")).await.unwrap();
    f.hostel.start(&name("alice"), &Quiet).await.unwrap();
    assert!(
        f.fake
            .network_inspect("hostel-alice")
            .await
            .unwrap()
            .unwrap()
            .internal
    );

    // A purge takes the network with it; a network left without a tenant is drift.
    f.hostel.purge(&name("bob"), true).await.unwrap();
    assert_eq!(f.fake.network_inspect("hostel-bob").await.unwrap(), None);
    f.fake
        .network_create(&hostel_runtime::NetworkSpec {
            name: "hostel-ghost".into(),
            bridge: "hslghost".into(),
            subnet: "10.213.9.0/28".into(),
            internal: false,
            labels: BTreeMap::from([
                (LABEL_TENANT.to_owned(), "ghost".to_owned()),
                (LABEL_INSTANCE.to_owned(), f.hostel.instance().to_owned()),
            ]),
        })
        .await
        .unwrap();
    let found = f.hostel.doctor(true).await.unwrap();
    assert!(
        found.iter().any(|x| x.subject == "hostel-ghost" && x.fixed),
        "{found:?}"
    );
    assert_eq!(f.fake.network_inspect("hostel-ghost").await.unwrap(), None);
}

#[tokio::test]
async fn a_full_network_pool_is_unavailable_and_rolls_the_create_back() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    paths.create_dirs().unwrap();
    let fake = FakeRuntime::new();
    fake.add_image(
        "hostel-workspace:latest",
        BTreeMap::from([(LABEL_IMAGE_VERSION.to_owned(), "v1".to_owned())]),
    );
    fake.add_image("hostel-workspace:v1", BTreeMap::new());
    let mut config = Config::default();
    config.network.pool = "10.9.0.0/28".parse().unwrap();
    let hostel = Hostel::new(
        paths.clone(),
        config,
        Arc::new(fake.clone()),
        Arc::new(DirStorage::new(paths.users())),
        Store::open_in_memory().unwrap(),
        "test",
    )
    .unwrap();
    hostel.create(request("alice"), &Quiet).await.unwrap();
    let err = hostel.create(request("bob"), &Quiet).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(err.to_string().contains("10.9.0.0/28"), "{err}");
    assert!(hostel.store().tenant(&name("bob")).unwrap().is_none());
    assert_eq!(fake.inspect("hostel-bob").await.unwrap(), None);
}

#[tokio::test]
async fn web_logins_make_sessions_and_wrong_ones_are_refused_alike() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let alice = name("alice");
    assert_eq!(
        f.hostel.set_password(&alice, "short").unwrap_err().code(),
        ErrorCode::InvalidInput
    );
    f.hostel
        .set_password(&alice, "correct horse battery staple")
        .unwrap();
    let stored = f.hostel.store().web_password(&alice).unwrap().unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains("horse"));
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    for (user, password) in [
        ("alice", "wrong password here"),
        ("bob", "correct horse battery staple"),
        ("Not A Name", "x"),
    ] {
        let err = f.hostel.web_login(user, password, Some(ip)).unwrap_err();
        assert_eq!(err.to_string(), "wrong tenant name or password");
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
    }
    let (who, token) = f
        .hostel
        .web_login("alice", "correct horse battery staple", Some(ip))
        .unwrap();
    assert_eq!(who, alice);
    assert_eq!(
        f.hostel.web_session(token.expose()).unwrap(),
        Some(alice.clone())
    );
    assert_eq!(f.hostel.web_session("forged").unwrap(), None);
    f.hostel.web_logout(token.expose()).unwrap();
    assert_eq!(f.hostel.web_session(token.expose()).unwrap(), None);
    let audit = f.hostel.audit_log().query(&Default::default()).unwrap();
    let kinds: Vec<(&str, Outcome)> = audit
        .iter()
        .filter(|r| r.event.kind.starts_with("web."))
        .map(|r| (r.event.kind.as_str(), r.event.outcome))
        .collect();
    assert_eq!(
        kinds,
        [
            ("web.passwd.v1", Outcome::Failed),
            ("web.passwd.v1", Outcome::Ok),
            ("web.auth.v1", Outcome::Denied),
            ("web.auth.v1", Outcome::Denied),
            ("web.auth.v1", Outcome::Denied),
            ("web.auth.v1", Outcome::Ok),
            ("web.logout.v1", Outcome::Ok),
        ]
    );
    assert!(!format!("{audit:?}").contains("horse"));
}

#[tokio::test]
async fn login_links_work_once_until_they_expire() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let alice = name("alice");
    let link = f
        .hostel
        .login_link(&alice, chrono::Duration::minutes(15))
        .unwrap();
    let (who, session) = f.hostel.login_with_link(link.expose(), None).unwrap();
    assert_eq!(who, alice);
    assert_eq!(
        f.hostel.web_session(session.expose()).unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        f.hostel
            .login_with_link(link.expose(), None)
            .unwrap_err()
            .code(),
        ErrorCode::Unauthenticated,
        "a link works once"
    );
    let old = f
        .hostel
        .login_link(&alice, chrono::Duration::seconds(-1))
        .unwrap();
    assert!(
        f.hostel.login_with_link(old.expose(), None).is_err(),
        "expired"
    );
    assert!(f.hostel.login_with_link("made-up", None).is_err());
    let audit = format!(
        "{:?}",
        f.hostel.audit_log().query(&Default::default()).unwrap()
    );
    assert!(
        !audit.contains(link.expose().as_str()),
        "the token is never recorded"
    );
}

/// A wake is activity: the idle check, which stopped a workspace a connection had just woken
/// (seen in the lifecycle test: "cannot exec in a stopped state"), counts quiet from it.
#[tokio::test]
async fn waking_a_workspace_counts_as_activity() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.hostel.stop(&name("alice")).await.unwrap();
    let before = chrono::Utc::now();
    f.hostel.start(&name("alice"), &Quiet).await.unwrap();
    let t = f.hostel.store().require(&name("alice")).unwrap();
    assert!(
        t.last_active_at.is_some_and(|at| at >= before),
        "{:?} before {before}",
        t.last_active_at
    );
}

/// Regression (#12): one address's failures banned everyone behind it. Failures as one tenant
/// ban the address for that tenant only; failures of any kind ban it for everything at a
/// higher count; lifting removes both.
#[test]
fn issue_12_failures_ban_per_tenant_first_then_the_address() {
    let f = fixture();
    let h = &f.hostel;
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let other: std::net::IpAddr = "192.0.2.8".parse().unwrap();
    let set: Vec<bool> = (0..10)
        .map(|_| h.login_failed(ip, "ssh-gateway", Some("alice")).unwrap())
        .collect();
    assert_eq!(set.iter().filter(|b| **b).count(), 1);
    assert!(set[9]);
    assert!(h.is_banned_as(ip, "alice").unwrap());
    assert!(!h.is_banned_as(ip, "bob").unwrap());
    assert!(!h.is_banned(ip).unwrap());
    assert!(!h.is_banned_as(other, "alice").unwrap());
    // A name that is no tenant name counts toward the address only.
    for _ in 0..20 {
        assert!(!h.login_failed(ip, "web", Some("Not A Name")).unwrap());
    }
    assert!(!h.is_banned_as(ip, "Not A Name").unwrap());
    let rest: Vec<bool> = (0..20)
        .map(|_| h.login_failed(ip, "api", None).unwrap())
        .collect();
    assert_eq!(rest.iter().filter(|b| **b).count(), 1);
    assert!(rest[19], "the 50th failure bans the address");
    assert!(h.is_banned(ip).unwrap() && h.is_banned_as(ip, "bob").unwrap());
    let bans = h.bans().unwrap();
    let scopes: Vec<Option<&str>> = bans.iter().map(|b| b.tenant.as_deref()).collect();
    assert_eq!(scopes, [None, Some("alice")]);
    h.unban(ip).unwrap();
    assert!(!h.is_banned_as(ip, "alice").unwrap());
    assert!(h.bans().unwrap().is_empty());
}

/// Regression (#12): on an engine that cannot limit the writable layer, `dd` to `/tmp` grew
/// the host's disk past the quota, and `check` said all was fine. It says so now.
#[tokio::test]
async fn issue_12_check_fails_when_the_writable_layer_has_no_limit() {
    let f = fixture();
    let layer = |items: Vec<crate::CheckItem>| {
        items
            .into_iter()
            .find(|i| i.name == "layer")
            .expect("a layer item")
    };
    let open = layer(f.hostel.check().await);
    assert!(!open.ok, "{open:?}");
    assert!(open.hint.unwrap().contains("btrfs"));
    f.fake.set_layer_quota(Some(LayerQuota::WholeRoot));
    assert!(layer(f.hostel.check().await).ok);
}

/// The limit asked of the engine counts what its quota counts: the image too under btrfs full
/// quota groups, only the workspace's own writes under simple quotas (where adding the image
/// would let a tenant write that much more outside its home).
#[tokio::test]
async fn issue_13_the_layer_limit_follows_what_the_engine_counts() {
    let disk = ByteSize::mib(64);
    for (quota, base) in [
        (None, None),
        (Some(LayerQuota::WholeRoot), Some(1u64 << 20)),
        (Some(LayerQuota::OwnWrites), Some(0)),
    ] {
        let f = fixture();
        f.fake.set_layer_quota(quota);
        let req = CreateRequest {
            disk: Some(disk),
            ..request("alice")
        };
        f.hostel.create(req, &Quiet).await.unwrap();
        let spec = f.fake.spec("hostel-alice").unwrap();
        assert_eq!(spec.layer_max, base.map(|b| b + disk.as_u64()), "{quota:?}");
    }
}

/// Runs `work` to a fault point armed with [`Hostel::arm`]: it dies there as a killed process
/// would, without its roll-back, letting go of its locks.
async fn crash<F: std::future::Future>(hostel: &Hostel, point: &'static str, work: F) {
    use futures_util::FutureExt;
    hostel.arm(point);
    let died = std::panic::AssertUnwindSafe(work).catch_unwind().await;
    hostel.disarm();
    assert!(died.is_err(), "{point} was not reached");
}

/// Engine objects and homes left, for checks that nothing leaked.
async fn leftovers(f: &Fixture) -> (Vec<String>, Vec<String>, bool) {
    let containers = f.fake.list(&[]).await.unwrap();
    let networks = f.fake.networks(&[]).await.unwrap();
    (
        containers.into_iter().map(|c| c.name).collect(),
        networks.into_iter().map(|n| n.name).collect(),
        f.storage.exists(&name("alice")),
    )
}

/// Reconciles once and checks that it rolled back the create of `tenant`, and only that.
async fn assert_rolled_back(h: &Hostel, tenant: &str, remove_home: bool) {
    let report = h
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    assert_eq!(
        report.repaired,
        [(
            tenant.to_owned(),
            hostel_core::reconcile::Repair::RollBackCreate { remove_home }
        )]
    );
}

fn kinds(h: &Hostel) -> Vec<String> {
    h.audit_log()
        .query(&Default::default())
        .unwrap()
        .into_iter()
        .map(|r| {
            let repair = r.event.detail.get("repair").cloned().unwrap_or_default();
            format!("{} {repair}", r.event.kind).trim_end().to_owned()
        })
        .collect()
}

/// Regression (#13): after a kill, tenants stayed `creating` for good and every call on them
/// got 409; only `doctor --fix` repaired them, and it left the home each create had made.
#[tokio::test]
async fn issue_13_a_create_killed_at_any_step_is_rolled_back_by_the_reconciler() {
    for point in [
        "create.recorded",
        "create.home",
        "create.network",
        "create.container",
        "create.started",
    ] {
        let f = fixture();
        f.hostel.ensure_filter().await.unwrap();
        crash(&f.hostel, point, f.hostel.create(request("alice"), &Quiet)).await;
        let t = f.hostel.store().require(&name("alice")).unwrap();
        assert_eq!(t.status, hostel_core::lifecycle::TenantStatus::Creating);
        let mut state = ReconcileState::default();
        let report = f.hostel.reconcile(&mut state, 30).await.unwrap();
        assert_eq!(
            report.repaired,
            [(
                "alice".to_owned(),
                hostel_core::reconcile::Repair::RollBackCreate { remove_home: true }
            )],
            "{point}"
        );
        assert_eq!(f.hostel.store().tenant(&name("alice")).unwrap(), None);
        assert_eq!(
            leftovers(&f).await,
            (vec![], vec![], false),
            "{point}: nothing the create made is left, its home included"
        );
        assert_eq!(
            kinds(&f.hostel).last().unwrap(),
            "reconcile.repair.v1 roll_back_create"
        );
        f.hostel.audit_log().verify().unwrap();
        assert_eq!(f.hostel.doctor(false).await.unwrap(), vec![], "{point}");
        // The name is free again.
        f.hostel.create(request("alice"), &Quiet).await.unwrap();
    }
}

#[tokio::test]
async fn issue_13_a_rolled_back_create_keeps_the_home_that_was_there() {
    let f = fixture();
    f.storage.ensure(&name("alice"), ByteSize::gib(1)).unwrap();
    let file = f.storage.home_path(&name("alice")).join("thesis.txt");
    std::fs::write(&file, "years of work").unwrap();
    crash(
        &f.hostel,
        "create.container",
        f.hostel.create(request("alice"), &Quiet),
    )
    .await;
    assert_rolled_back(&f.hostel, "alice", false).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "years of work");
}

/// Regression (#13): `doctor --fix` under live traffic rolled back creates still in progress.
#[tokio::test]
async fn issue_13_a_tenant_an_operation_holds_is_left_alone() {
    let f = fixture();
    f.hostel.ensure_filter().await.unwrap();
    crash(
        &f.hostel,
        "create.home",
        f.hostel.create(request("alice"), &Quiet),
    )
    .await;
    // A live operation on the tenant (here: this test holding its lock).
    let held = f.hostel.ops.operation(&name("alice")).await.unwrap();
    let report = f
        .hostel
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    assert_eq!(report.busy, ["alice"]);
    assert_eq!(f.hostel.doctor(true).await.unwrap(), vec![]);
    assert!(f.hostel.store().tenant(&name("alice")).unwrap().is_some());
    drop(held);
    let report = f
        .hostel
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    assert_eq!(report.repaired.len(), 1);
}

#[tokio::test]
async fn issue_13_purges_stops_and_deletes_cut_short_are_finished() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.hostel.create(request("bob"), &Quiet).await.unwrap();
    f.hostel.create(request("carol"), &Quiet).await.unwrap();
    for (point, work) in [
        (
            "purge.container",
            Box::pin(async { f.hostel.purge(&name("alice"), true).await.map(|_| ()) })
                as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
        ),
        (
            "stop.recorded",
            Box::pin(async { f.hostel.stop(&name("bob")).await.map(|_| ()) }),
        ),
        (
            "delete.recorded",
            Box::pin(async { f.hostel.delete(&name("carol")).await.map(|_| ()) }),
        ),
    ] {
        crash(&f.hostel, point, work).await;
    }
    let state = |n: &str| {
        let fake = f.fake.clone();
        let n = n.to_owned();
        async move {
            fake.inspect(&format!("hostel-{n}"))
                .await
                .unwrap()
                .map(|c| c.state)
        }
    };
    assert_eq!(state("bob").await, Some(WorkspaceState::Running));
    assert_eq!(state("carol").await, Some(WorkspaceState::Running));
    let report = f
        .hostel
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    use hostel_core::reconcile::Repair;
    assert_eq!(
        report.repaired,
        [
            ("alice".to_owned(), Repair::FinishPurge),
            ("bob".to_owned(), Repair::Stop),
            ("carol".to_owned(), Repair::Remove),
        ]
    );
    assert_eq!(f.hostel.store().tenant(&name("alice")).unwrap(), None);
    assert!(!f.storage.exists(&name("alice")));
    assert_eq!(state("bob").await, Some(WorkspaceState::Stopped));
    assert_eq!(state("carol").await, None);
    assert!(f.storage.exists(&name("carol")), "delete keeps the home");
    assert_eq!(f.hostel.doctor(false).await.unwrap(), vec![]);
}

/// Regression (#13): an interrupted `set --disk` left the kernel's limit apart from the stored
/// quota, and `doctor` saw no drift. The limit is now read back.
#[tokio::test]
async fn issue_13_limits_are_read_back_and_a_cut_short_set_is_finished() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let change = QuotaChange {
        disk: Some(ByteSize::mib(64)),
        memory: Some(ByteSize::mib(512)),
        ..QuotaChange::default()
    };
    crash(
        &f.hostel,
        "set.recorded",
        f.hostel.set(
            &name("alice"),
            change,
            None,
            None,
            hostel_core::policy::PolicyChange::default(),
        ),
    )
    .await;
    let t = f.hostel.store().require(&name("alice")).unwrap();
    assert_eq!(t.quota.disk, ByteSize::mib(64), "the wish was recorded");
    assert_eq!(
        f.storage.limit(&name("alice")).unwrap(),
        Some(ByteSize::gib(5))
    );
    let found = f.hostel.doctor(false).await.unwrap();
    let problems: Vec<&str> = found.iter().map(|x| x.problem.as_str()).collect();
    assert_eq!(
        problems,
        [
            "the home's size limit is not the tenant's disk quota",
            "the workspace's CPU, memory or pids limits are not the tenant's quota"
        ]
    );
    f.hostel
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    assert_eq!(
        f.storage.limit(&name("alice")).unwrap(),
        Some(ByteSize::mib(64))
    );
    let limits = f
        .fake
        .inspect("hostel-alice")
        .await
        .unwrap()
        .unwrap()
        .limits;
    assert_eq!(limits.unwrap().memory, ByteSize::mib(512));
    // Changed outside hostel: seen and put back.
    f.storage.resize(&name("alice"), ByteSize::mib(56)).unwrap();
    assert_eq!(f.hostel.doctor(true).await.unwrap().len(), 1);
    assert_eq!(
        f.storage.limit(&name("alice")).unwrap(),
        Some(ByteSize::mib(64))
    );
}

/// Regression (#13): one container named `hostel-<tenant>` that hostel does not own made the
/// reap return early, so no later tenant's TTL or idle stop ever ran.
#[tokio::test]
async fn issue_13_one_tenant_failing_never_stops_the_others() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let mut late = request("zed");
    late.policy.expires_at = Some(chrono::Utc::now() + chrono::Duration::seconds(1));
    f.hostel.create(late, &Quiet).await.unwrap();
    f.fake.remove_by_hand("hostel-alice");
    let mut foreign = spec_like("hostel-alice");
    foreign.labels = BTreeMap::from([(LABEL_INSTANCE.to_owned(), "someone-else".to_owned())]);
    f.fake.create(&foreign).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut state = ReconcileState::default();
    let report = f.hostel.reconcile(&mut state, 30).await.unwrap();
    assert_eq!(report.unobserved.len(), 1, "{report:?}");
    assert_eq!(report.unobserved[0].0, "alice");
    assert_eq!(
        report.repaired,
        [(
            "zed".to_owned(),
            hostel_core::reconcile::Repair::Lifecycle(hostel_core::policy::Action::Delete)
        )]
    );
    // Failing tenants wait before their next try; the others are looked at every time.
    let again = f.hostel.reconcile(&mut state, 30).await.unwrap();
    assert_eq!(again.waiting, ["alice"]);
    assert!(again.unobserved.is_empty());
}

/// Regression (#13): one failed `stats` call counted as no CPU use, so a busy batch job with
/// no session looked idle and was stopped.
#[tokio::test]
async fn issue_13_usage_that_cannot_be_read_counts_as_busy() {
    let f = fixture();
    let mut req = request("alice");
    req.policy.idle_stop_secs = Some(1);
    f.hostel.create(req, &Quiet).await.unwrap();
    f.hostel
        .store()
        .touch(
            &name("alice"),
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .unwrap();
    let mut state = ReconcileState::default();
    // A first look knows no earlier counter: busy.
    f.hostel.reconcile(&mut state, 30).await.unwrap();
    f.fake.fail("stats", "engine hiccup");
    let report = f.hostel.reconcile(&mut state, 30).await.unwrap();
    assert_eq!(report.repaired, vec![], "unknown usage is busy");
    assert_eq!(
        f.hostel.workspace_state(&name("alice")).await.unwrap(),
        WorkspaceState::Running
    );
}

#[tokio::test]
async fn issue_13_a_workspace_that_should_run_is_started_again_with_backoff() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    // The engine restarted: the container is stopped, nobody asked for it.
    f.fake.stop("hostel-alice", 0).await.unwrap();
    f.fake.fail("start", "engine still starting");
    let mut state = ReconcileState::default();
    let report = f.hostel.reconcile(&mut state, 30).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        f.hostel.reconcile(&mut state, 30).await.unwrap().waiting,
        ["alice"]
    );
    let mut state = ReconcileState::default();
    f.fake.clear_failures();
    let report = f.hostel.reconcile(&mut state, 30).await.unwrap();
    assert_eq!(
        report.repaired,
        [("alice".to_owned(), hostel_core::reconcile::Repair::Start)]
    );
    assert_eq!(
        f.hostel.workspace_state(&name("alice")).await.unwrap(),
        WorkspaceState::Running
    );
    let audit = kinds(&f.hostel);
    assert_eq!(
        audit
            .iter()
            .filter(|k| *k == "reconcile.repair.v1 start")
            .count(),
        2,
        "the failed try and the good one: {audit:?}"
    );
}

#[tokio::test]
async fn issue_13_after_a_reboot_only_autostart_tenants_come_back() {
    let f = fixture();
    let mut auto = request("auto");
    auto.policy.autostart = true;
    f.hostel.create(auto, &Quiet).await.unwrap();
    f.hostel.create(request("plain"), &Quiet).await.unwrap();
    let first = f.hostel.daemon_started().unwrap();
    assert_eq!(first.left_stopped, Vec::<String>::new(), "first start");
    assert_eq!(first.autostart, ["auto"]);
    f.hostel
        .store()
        .set_meta("boot_id", "an-earlier-boot")
        .unwrap();
    for n in ["hostel-auto", "hostel-plain"] {
        f.fake.stop(n, 0).await.unwrap();
    }
    assert_eq!(f.hostel.daemon_started().unwrap().left_stopped, ["plain"]);
    let report = f
        .hostel
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    assert_eq!(
        report.repaired,
        [("auto".to_owned(), hostel_core::reconcile::Repair::Start)]
    );
    assert_eq!(
        f.hostel.workspace_state(&name("plain")).await.unwrap(),
        WorkspaceState::Stopped
    );
}

fn spec_like(container: &str) -> hostel_runtime::WorkspaceSpec {
    hostel_runtime::WorkspaceSpec {
        name: container.into(),
        image: "hostel-workspace:v1".into(),
        hostname: "x".into(),
        env: vec![],
        labels: BTreeMap::new(),
        limits: hostel_core::Limits {
            cpus: hostel_core::Cpus::millis(1),
            memory: ByteSize::bytes(1),
            pids: 1,
        },
        mounts: vec![],
        privileges: hostel_runtime::Privileges::InitOnly,
        network: None,
        output_log_max: 1 << 20,
        hidden_paths: vec![],
        layer_max: None,
        syscalls: Default::default(),
        gpus: hostel_core::Gpus::None,
        disk_io: hostel_core::DiskIo::Unlimited,
    }
}

#[tokio::test]
async fn issue_13_what_a_build_cut_short_left_is_removed_at_daemon_start() {
    let f = fixture();
    let images = f.hostel.paths().images();
    std::fs::create_dir_all(images.join("bookworm-rootfs.tmp/etc")).unwrap();
    std::fs::write(images.join("bookworm-rootfs.tar.partial"), "half").unwrap();
    std::fs::write(images.join("bookworm-rootfs.tar"), "whole").unwrap();
    let start = f.hostel.daemon_started().unwrap();
    assert_eq!(
        {
            let mut v = start.build_leftovers.clone();
            v.sort();
            v
        },
        ["bookworm-rootfs.tar.partial", "bookworm-rootfs.tmp"]
    );
    assert!(
        images.join("bookworm-rootfs.tar").exists(),
        "a whole tarball stays"
    );
    // A build that runs holds the lock: its files are left alone.
    std::fs::create_dir_all(images.join("bookworm-rootfs.tmp")).unwrap();
    let held = f.hostel.lock_builds().await.unwrap();
    assert_eq!(
        f.hostel.daemon_started().unwrap().build_leftovers,
        Vec::<String>::new()
    );
    drop(held);
    assert_eq!(
        f.hostel.daemon_started().unwrap().build_leftovers,
        ["bookworm-rootfs.tmp"]
    );
}

/// An engine call a killed daemon had sent can finish after the roll-back: the container (or
/// network) of a tenant that has no record any more is removed at the next look.
#[tokio::test]
async fn issue_13_engine_objects_a_roll_back_missed_are_swept() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let mut late = spec_like("hostel-ghost");
    late.labels = BTreeMap::from([
        (LABEL_INSTANCE.to_owned(), f.hostel.instance().to_owned()),
        (LABEL_TENANT.to_owned(), "ghost".to_owned()),
    ]);
    f.fake.create(&late).await.unwrap();
    let mut foreign = spec_like("hostel-other");
    foreign.labels = BTreeMap::from([
        (LABEL_INSTANCE.to_owned(), "someone-else".to_owned()),
        (LABEL_TENANT.to_owned(), "other".to_owned()),
    ]);
    f.fake.create(&foreign).await.unwrap();
    let report = f
        .hostel
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    assert_eq!(report.orphans_removed, ["hostel-ghost"]);
    assert_eq!(f.fake.inspect("hostel-ghost").await.unwrap(), None);
    assert!(
        f.fake.inspect("hostel-other").await.unwrap().is_some(),
        "not ours"
    );
    assert!(f.fake.inspect("hostel-alice").await.unwrap().is_some());
    assert_eq!(
        kinds(&f.hostel).last().unwrap(),
        "reconcile.repair.v1 remove_orphan"
    );
}

/// #18: each look of the reconciler is a point of the tenant's chart and of the host's, read
/// back without the engine; a purged tenant's history goes with it.
#[tokio::test]
async fn issue_18_the_reconciler_keeps_the_charts_history() {
    use hostel_core::history::Range;
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.hostel.create(request("bob"), &Quiet).await.unwrap();
    f.fake.stop("hostel-bob", 0).await.unwrap();
    let mut state = ReconcileState::default();
    f.hostel.reconcile(&mut state, 30).await.unwrap();
    let alice = f
        .hostel
        .usage_history(&name("alice"), Range::Hour, 60)
        .unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].memory, (16u64 << 20) as f32, "the engine's figure");
    assert_eq!(alice[0].running, 1.0);
    let host = f.hostel.host_history(Range::Hour, 60);
    assert_eq!(host.len(), 1);
    assert_eq!(host[0].running, 1.0, "bob's workspace was stopped");
    assert_eq!(f.hostel.latest_usage().len(), 2);
    // Reading the history asks the engine nothing.
    f.fake.fail("stats", "the engine must not be asked");
    f.fake.fail("inspect", "the engine must not be asked");
    assert_eq!(f.hostel.latest_usage()["alice"].running, 1.0);
    f.fake.clear_failures();
    assert!(
        f.hostel
            .usage_history(&name("carol"), Range::Hour, 60)
            .is_err()
    );
    f.hostel.purge(&name("bob"), true).await.unwrap();
    f.hostel.reconcile(&mut state, 30).await.unwrap();
    assert_eq!(
        f.hostel.latest_usage().keys().collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(f.hostel.history_bytes() > 0);
    assert!(f.hostel.metrics_text(true).contains("hostel_history_bytes"));
    // A purged tenant's series leave /metrics with its charts.
    assert!(f.hostel.metrics_text(true).contains("tenant=\"alice\""));
    f.hostel.purge(&name("alice"), true).await.unwrap();
    f.hostel.reconcile(&mut state, 30).await.unwrap();
    let text = f.hostel.metrics_text(true);
    assert!(!text.contains("tenant=\"alice\""), "{text}");
    assert!(f.hostel.latest_usage().is_empty());
}

/// #18: the Grafana dashboard in `dist/grafana` is a dashboard Grafana loads (the fields its
/// import needs, every panel with a query) and charts only metric families this daemon serves;
/// the Prometheus example scrapes `/metrics` with a token.
#[tokio::test]
async fn issue_18_the_grafana_dashboard_charts_what_the_daemon_serves() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.hostel
        .reconcile(&mut ReconcileState::default(), 30)
        .await
        .unwrap();
    // A session open, as during a scrape on a host in use.
    f.hostel.activity_begin(&name("alice"));
    let text = f.hostel.metrics_text(true);
    f.hostel.activity_end(&name("alice"));
    let served: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/grafana");
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/hostel-dashboard.json")).unwrap(),
    )
    .unwrap();
    for key in ["title", "uid", "schemaVersion", "panels", "templating"] {
        assert!(!dash[key].is_null(), "the dashboard lacks {key}");
    }
    let mut charted = Vec::new();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 6);
    for p in panels {
        assert_eq!(p["type"], "timeseries", "{p}");
        assert!(p["gridPos"]["w"].as_u64().unwrap() > 0, "{p}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}: no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = word.strip_prefix("hostel_") {
                    let family = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .unwrap_or(name);
                    charted.push(format!("hostel_{family}"));
                }
            }
        }
    }
    charted.sort();
    charted.dedup();
    for family in &charted {
        assert!(
            served.contains(&family.as_str()),
            "the dashboard charts {family}, which /metrics does not serve: {served:?}"
        );
    }
    for wanted in [
        "hostel_tenant_cpu_seconds",
        "hostel_tenant_memory_bytes",
        "hostel_tenant_disk_bytes",
        "hostel_tenant_network_bytes",
        "hostel_open_sessions",
    ] {
        assert!(
            charted.iter().any(|c| c == wanted),
            "{wanted} is not charted"
        );
    }
    let scrape = std::fs::read_to_string(format!("{dir}/prometheus.yml")).unwrap();
    assert!(scrape.contains("metrics_path: /metrics"), "{scrape}");
    assert!(scrape.contains("credentials_file:"), "{scrape}");
}

fn snap(s: &str) -> hostel_core::SnapshotName {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_snapshot_restores_the_home_and_the_workspace_runs_again() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let home = f.storage.home_path(&name("alice"));
    std::fs::write(home.join("thesis.txt"), "chapter 1").unwrap();
    let taken = f
        .hostel
        .snapshot_create(&name("alice"), Some(snap("before")))
        .await
        .unwrap();
    assert_eq!(
        (taken.name.as_str(), taken.system, taken.scheduled),
        ("before", false, false)
    );
    std::fs::write(home.join("thesis.txt"), "overwritten").unwrap();
    std::fs::write(home.join("new.txt"), "new").unwrap();
    let again = f
        .hostel
        .snapshot_create(&name("alice"), Some(snap("before")))
        .await
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::Conflict);

    f.hostel
        .snapshot_restore(&name("alice"), &snap("before"), &Quiet)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(home.join("thesis.txt")).unwrap(),
        "chapter 1"
    );
    assert!(!home.join("new.txt").exists());
    let (list, schedule) = f.hostel.snapshots(&name("alice")).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(schedule, None);
    let info = f.hostel.info(&name("alice")).await.unwrap();
    assert_eq!(info.summary.state, WorkspaceState::Running);
    let missing = f
        .hostel
        .snapshot_restore(&name("alice"), &snap("nope"), &Quiet)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), ErrorCode::NotFound);
    assert!(
        missing
            .hint()
            .unwrap()
            .contains("hostel snapshot list alice")
    );

    // A deleted workspace has nothing to stop: the home comes back all the same.
    f.hostel.delete(&name("alice")).await.unwrap();
    std::fs::write(home.join("thesis.txt"), "overwritten again").unwrap();
    f.hostel
        .snapshot_restore(&name("alice"), &snap("before"), &Quiet)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(home.join("thesis.txt")).unwrap(),
        "chapter 1"
    );
    assert_eq!(
        f.hostel.info(&name("alice")).await.unwrap().summary.state,
        WorkspaceState::Deleted,
        "it stays as it was asked to be"
    );

    f.hostel
        .snapshot_delete(&name("alice"), &snap("before"))
        .await
        .unwrap();
    assert!(
        f.hostel
            .snapshots(&name("alice"))
            .await
            .unwrap()
            .0
            .is_empty()
    );
    let kinds = kinds(&f.hostel);
    for kind in [
        "snapshot.create.v1",
        "snapshot.restore.v1",
        "snapshot.delete.v1",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    f.hostel.audit_log().verify().unwrap();
}

/// A restore killed part-way leaves the tenant `restoring`: nothing else acts on it, and the
/// reconciler finishes the restore, whole.
#[tokio::test]
async fn a_restore_killed_part_way_is_finished_by_the_reconciler() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let home = f.storage.home_path(&name("alice"));
    std::fs::write(home.join("f"), "old").unwrap();
    f.hostel
        .snapshot_create(&name("alice"), Some(snap("s1")))
        .await
        .unwrap();
    std::fs::write(home.join("f"), "new").unwrap();
    crash(
        &f.hostel,
        "restore.recorded",
        f.hostel
            .snapshot_restore(&name("alice"), &snap("s1"), &Quiet),
    )
    .await;
    let t = f.hostel.store().require(&name("alice")).unwrap();
    assert_eq!(t.status, hostel_core::lifecycle::TenantStatus::Restoring);
    let busy = f.hostel.stop(&name("alice")).await.unwrap_err();
    assert_eq!(busy.code(), ErrorCode::Conflict);
    let found = f.hostel.doctor(false).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");

    let mut state = ReconcileState::default();
    let report = f.hostel.reconcile(&mut state, 30).await.unwrap();
    assert_eq!(
        report.repaired,
        [(
            "alice".to_owned(),
            hostel_core::reconcile::Repair::FinishRestore
        )]
    );
    assert_eq!(std::fs::read_to_string(home.join("f")).unwrap(), "old");
    let t = f.hostel.store().require(&name("alice")).unwrap();
    assert_eq!(
        (t.status, t.restoring),
        (hostel_core::lifecycle::TenantStatus::Ready, None)
    );
    // The next look brings the workspace back to what it should be.
    f.hostel.reconcile(&mut state, 30).await.unwrap();
    let info = f.hostel.info(&name("alice")).await.unwrap();
    assert_eq!(info.summary.state, WorkspaceState::Running);
}

#[tokio::test]
async fn snapshots_are_bounded_and_schedules_take_them() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    let daily = |keep| {
        Some(hostel_core::snapshot::Schedule {
            every: hostel_core::snapshot::Every::Daily,
            keep,
        })
    };
    let err = f
        .hostel
        .snapshot_schedule(&name("alice"), daily(11))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    f.hostel
        .snapshot_schedule(&name("alice"), daily(2))
        .await
        .unwrap();
    let taken = f.hostel.take_due_snapshots().await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(taken[0].1.is_auto());
    assert!(
        f.hostel.take_due_snapshots().await.unwrap().is_empty(),
        "not due again today"
    );
    let (list, schedule) = f.hostel.snapshots(&name("alice")).await.unwrap();
    assert!(list[0].scheduled);
    assert_eq!(schedule.map(|s| s.keep), Some(2));

    for i in 1..10 {
        f.hostel
            .snapshot_create(&name("alice"), Some(snap(&format!("s{i}"))))
            .await
            .unwrap();
    }
    let full = f
        .hostel
        .snapshot_create(&name("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(full.code(), ErrorCode::Conflict);
    assert!(full.to_string().contains("snapshots_max"), "{full}");
}

#[tokio::test]
async fn shares_mount_read_only_for_the_tenants_they_name() {
    let f = fixture();
    f.hostel.create(request("alice"), &Quiet).await.unwrap();
    f.hostel.create(request("bob"), &Quiet).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let share: hostel_core::share::ShareName = "data".parse().unwrap();
    let added = f
        .hostel
        .share_add(
            &share,
            data.path().to_str().unwrap(),
            Some(vec![name("alice")]),
        )
        .await
        .unwrap();
    let mounts = |t: &str| {
        let f = &f;
        let t = name(t);
        async move {
            let rec = f.hostel.store().require(&t).unwrap();
            f.hostel.spec_for(&rec).await.unwrap().mounts
        }
    };
    let alice = mounts("alice").await;
    assert_eq!(alice.len(), 2);
    assert_eq!(
        (
            alice[1].source.as_str(),
            alice[1].target.as_str(),
            alice[1].read_only
        ),
        (added.path.as_str(), "/shared/data", true)
    );
    assert!(!alice[0].read_only, "the home stays writable");
    assert_eq!(mounts("bob").await.len(), 1);

    // hostel's root (the homes, the store), what holds it, and the host's own folders are
    // never shared; nor is a file, or a path that is not there.
    let root = f.hostel.paths().root().to_str().unwrap().to_owned();
    for bad in [root.as_str(), "/", "/etc", "/proc", "/nonexistent-share"] {
        let err = f
            .hostel
            .share_add(&"other".parse().unwrap(), bad, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{bad}: {err}");
        assert!(err.hint().unwrap().contains("/srv/datasets"), "{bad}");
    }
    let taken = f
        .hostel
        .share_add(&share, data.path().to_str().unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(taken.code(), ErrorCode::Conflict);
    f.hostel.share_remove(&share).await.unwrap();
    assert_eq!(mounts("alice").await.len(), 1);
    let kinds = kinds(&f.hostel);
    assert!(kinds.iter().any(|k| k == "share.add.v1"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "share.remove.v1"), "{kinds:?}");
}

/// Reads a whole export.
async fn exported(h: &Arc<Hostel>, tenant: &str) -> Vec<u8> {
    let mut body = h.export(&name(tenant)).await.unwrap().body;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend(chunk.unwrap());
    }
    out
}

/// An archive as an upload, in small chunks.
fn upload(bytes: Vec<u8>) -> futures_util::stream::BoxStream<'static, std::io::Result<Vec<u8>>> {
    let chunks: Vec<_> = bytes.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks).boxed()
}

fn import_as(n: &str) -> ImportRequest {
    ImportRequest {
        name: Some(name(n)),
        ..ImportRequest::default()
    }
}

/// Every entry below `root`: its path, kind, mode, owner, and content or link target.
fn tree(root: &std::path::Path) -> Vec<(String, String)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let t = m.file_type();
            let what = if t.is_symlink() {
                format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
            } else if t.is_file() {
                format!("{:?} links {}", std::fs::read(e.path()).unwrap(), m.nlink())
            } else if t.is_fifo() {
                "fifo".into()
            } else {
                "dir".into()
            };
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let mode = if t.is_symlink() { 0 } else { m.mode() & 0o7777 };
            (
                rel,
                format!("{what} mode {mode:o} owner {}:{}", m.uid(), m.gid()),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_export_imports_as_the_same_home_and_record() {
    let f = fixture();
    let (h, storage) = (&f.hostel, &f.storage);
    let alice = name("alice");
    let req = CreateRequest {
        disk_io: Some(hostel_core::DiskIo::Ops(500)),
        ..request("alice")
    };
    h.create(req, &Quiet).await.unwrap();
    let home = storage.home_path(&alice);
    std::fs::create_dir_all(home.join("src/deep")).unwrap();
    std::fs::write(home.join("src/deep/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(home.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(home.join("run.sh"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    // A link out of the home is kept as a link, never read through.
    std::os::unix::fs::symlink("/etc/passwd", home.join("passwd")).unwrap();
    nix::unistd::mkfifo(
        &home.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    std::os::unix::fs::lchown(home.join("src/deep/main.rs"), Some(1234), Some(1235)).unwrap();
    h.set_password(&alice, "a long enough passphrase").unwrap();
    h.snapshot_schedule(
        &alice,
        Some(hostel_core::snapshot::Schedule {
            every: hostel_core::snapshot::Every::Daily,
            keep: 3,
        }),
    )
    .await
    .unwrap();
    h.store()
        .publish_port(&hostel_store::PublishedPort {
            tenant: alice.clone(),
            port: 8888,
            public: true,
            created_at: chrono::Utc::now(),
        })
        .unwrap();

    let archive = exported(h, "alice").await;
    // The frozen copy the export read is gone.
    let exports = h.paths().users().join("alice").join("exports");
    assert_eq!(std::fs::read_dir(&exports).unwrap().count(), 0);

    let info = h
        .import(upload(archive.clone()), import_as("bob"), &Quiet)
        .await
        .unwrap();
    assert_eq!(info.summary.name, "bob");
    let bob = name("bob");
    assert_eq!(tree(&storage.home_path(&bob)), tree(&home));
    let (a, b) = (
        h.store().require(&alice).unwrap(),
        h.store().require(&bob).unwrap(),
    );
    assert_eq!((a.quota, a.policy, a.egress), (b.quota, b.policy, b.egress));
    assert_eq!(b.snapshots, a.snapshots);
    assert_eq!(
        h.store().web_password(&bob).unwrap(),
        h.store().web_password(&alice).unwrap()
    );
    let keys = |n: &TenantName| -> Vec<String> {
        h.store()
            .keys(n)
            .unwrap()
            .into_iter()
            .map(|k| k.key.openssh)
            .collect()
    };
    assert_eq!(keys(&bob), keys(&alice));
    // This host has no [http] domain to give the published port an origin: it stays behind.
    assert_eq!(h.ports(&alice).unwrap().len(), 1);
    assert_eq!(h.ports(&bob).unwrap().len(), 0);
    let kinds = kinds(h);
    assert!(kinds.iter().any(|k| k == "tenant.export.v1"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "tenant.import.v1"), "{kinds:?}");

    // The archive's own name is taken now, and so is a name with a home.
    let err = h
        .import(upload(archive.clone()), ImportRequest::default(), &Quiet)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    storage.ensure(&name("carol"), ByteSize::gib(1)).unwrap();
    let err = h
        .import(upload(archive), import_as("carol"), &Quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::HomeExists { .. }), "{err}");
    assert!(h.store().tenant(&name("carol")).unwrap().is_none());
}

#[tokio::test]
async fn a_cut_or_changed_archive_imports_nothing() {
    let f = fixture();
    let (h, storage) = (&f.hostel, &f.storage);
    let fake = &f.fake;
    h.create(request("alice"), &Quiet).await.unwrap();
    let home = storage.home_path(&name("alice"));
    // Enough that the archive's home spans many chunks.
    let noise: Vec<u8> = (0..400_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(home.join("data.bin"), &noise).unwrap();
    let archive = exported(h, "alice").await;
    let before = fake.list(&[]).await.unwrap().len();

    let cut = archive.get(..archive.len() - 9).unwrap().to_vec();
    let mut changed = archive.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x40;
    for (what, bytes) in [("cut", cut), ("changed", changed), ("empty", Vec::new())] {
        let err = h
            .import(upload(bytes), import_as("bob"), &Quiet)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{what}: {err}");
        assert!(h.store().tenant(&name("bob")).unwrap().is_none(), "{what}");
        assert!(
            !storage.exists(&name("bob")),
            "{what}: the half-filled home stays"
        );
        assert_eq!(fake.list(&[]).await.unwrap().len(), before, "{what}");
    }
}

/// An archive entry written byte for byte: name, kind, link target, content.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// An archive with the record of `alice` and the given entries, written as no honest writer
/// would.
fn hostile_archive(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let manifest = serde_json::json!({
        "format": 1, "hostel": "0.1.0", "exported_at": "2026-12-07T00:00:00Z", "engine": "docker",
        "name": "alice", "image": "x",
        "quota": {"cpus": 1.0, "memory": "256MiB", "disk": "1GiB", "pids": 100},
        "policy": {"expires_at": null, "ephemeral": false, "autostart": false, "idle_stop_secs": null},
        "egress": "all", "keys": [KEY], "web_password": null, "snapshot_schedule": null, "ports": []
    });
    let mut tar = tar::Builder::new(Vec::new());
    let json = serde_json::to_vec(&manifest).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(json.len() as u64);
    h.set_mode(0o600);
    tar.append_data(&mut h, "hostel-export.json", json.as_slice())
        .unwrap();
    for (path, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap()
}

#[tokio::test]
async fn an_archive_cannot_write_outside_the_new_home() {
    use tar::EntryType::{Block, Char, Directory, Link, Regular, Symlink};
    let f = fixture();
    let (h, storage) = (&f.hostel, &f.storage);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_owned();
    let dir: &[u8] = b"";
    let cases: Vec<(&str, Vec<RawEntry<'_>>)> = vec![
        (
            "dot-dot",
            vec![
                ("home/", Directory, "", dir),
                ("home/../../escaped", Regular, "", b"x"),
            ],
        ),
        ("absolute", vec![("/tmp/escaped", Regular, "", b"x")]),
        ("not home", vec![("etc/passwd", Regular, "", b"x")]),
        (
            "through a symlink",
            vec![
                ("home/", Directory, "", dir),
                ("home/out", Symlink, &target, dir),
                ("home/out/planted", Regular, "", b"x"),
            ],
        ),
        (
            "hard link out",
            vec![
                ("home/", Directory, "", dir),
                ("home/pw", Link, "/etc/passwd", dir),
            ],
        ),
        (
            "hard link through a symlink",
            vec![
                ("home/", Directory, "", dir),
                ("home/etc", Symlink, "/etc", dir),
                ("home/pw", Link, "home/etc/passwd", dir),
            ],
        ),
        (
            "device",
            vec![("home/", Directory, "", dir), ("home/mem", Char, "", dir)],
        ),
        (
            "block device",
            vec![("home/", Directory, "", dir), ("home/sda", Block, "", dir)],
        ),
        (
            "twice",
            vec![
                ("home/", Directory, "", dir),
                ("home/a", Symlink, &target, dir),
                ("home/a", Regular, "", b"x"),
            ],
        ),
    ];
    for (what, entries) in cases {
        let err = h
            .import(
                upload(hostile_archive(&entries)),
                import_as("mallory"),
                &Quiet,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{what}: {err}");
        assert!(
            matches!(err, ServiceError::BadArchive { .. }),
            "{what}: {err}"
        );
        assert!(!storage.exists(&name("mallory")), "{what}");
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{what}"
        );
    }
    assert!(!std::path::Path::new("/tmp/escaped").exists());
    // The same shape with nothing hostile in it imports.
    h.import(
        upload(hostile_archive(&[
            ("home/", Directory, "", dir),
            ("home/ok", Regular, "", b"fine"),
        ])),
        import_as("mallory"),
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(storage.home_path(&name("mallory")).join("ok")).unwrap(),
        b"fine"
    );
}

#[tokio::test]
async fn an_import_killed_after_filling_the_home_is_rolled_back() {
    let f = fixture();
    let (h, storage) = (&f.hostel, &f.storage);
    h.ensure_filter().await.unwrap();
    h.create(request("alice"), &Quiet).await.unwrap();
    std::fs::write(storage.home_path(&name("alice")).join("f"), "x").unwrap();
    let archive = exported(h, "alice").await;
    crash(
        h,
        "create.filled",
        h.import(upload(archive), import_as("bob"), &Quiet),
    )
    .await;
    let bob = name("bob");
    assert!(storage.exists(&bob));
    assert_eq!(
        h.store().require(&bob).unwrap().status,
        hostel_core::lifecycle::TenantStatus::Creating
    );
    assert_rolled_back(h, "bob", true).await;
    assert!(!storage.exists(&bob), "the half-imported home goes");
    assert!(storage.exists(&name("alice")));
}

#[tokio::test]
async fn gpus_are_given_at_the_next_start_and_only_what_the_host_has() {
    let f = fixture();
    let gpus = |n: u32| CreateRequest {
        gpus: Some(hostel_core::Gpus::Count(n)),
        ..request("alice")
    };
    // The fake engine has no GPU, as these machines.
    let err = f.hostel.create(gpus(1), &Quiet).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert_eq!(err.to_string(), "gpus 1: the host has 0 GPUs");
    assert!(f.hostel.store().tenant(&name("alice")).unwrap().is_none());

    f.fake.set_gpus(2);
    let info = f.hostel.create(gpus(2), &Quiet).await.unwrap();
    assert_eq!(info.summary.quota.gpus, hostel_core::Gpus::Count(2));
    let spec = f.fake.spec("hostel-alice").unwrap();
    assert_eq!(spec.gpus, hostel_core::Gpus::Count(2));
    let alice = name("alice");
    let set_gpus = |gpus| {
        let change = QuotaChange {
            gpus: Some(gpus),
            ..QuotaChange::default()
        };
        f.hostel.set(&alice, change, None, None, Default::default())
    };
    let err = set_gpus(hostel_core::Gpus::Count(3)).await.unwrap_err();
    assert_eq!(err.to_string(), "gpus 3: the host has 2 GPUs");

    let out = set_gpus(hostel_core::Gpus::All).await.unwrap();
    assert_eq!(
        (out[0].field, out[0].from.as_str(), out[0].to.as_str()),
        ("gpus", "2", "all")
    );
    assert!(
        out[0].applied.starts_with("next start"),
        "{}",
        out[0].applied
    );
    // The running workspace is stale until it starts again, then has them.
    assert!(f.hostel.info(&name("alice")).await.unwrap().stale);
    f.hostel.stop(&name("alice")).await.unwrap();
    f.hostel.start(&name("alice"), &Quiet).await.unwrap();
    assert_eq!(
        f.fake.spec("hostel-alice").unwrap().gpus,
        hostel_core::Gpus::All
    );
    assert!(!f.hostel.info(&name("alice")).await.unwrap().stale);
}

#[tokio::test]
async fn an_image_that_runs_containers_is_refused_where_the_engine_cannot_confine_them() {
    let f = fixture();
    f.fake.add_image(
        "hostel-workspace:docker",
        BTreeMap::from([(hostel_core::NESTING_LABEL.to_owned(), "docker".to_owned())]),
    );
    let req = CreateRequest {
        image: Some("docker".into()),
        ..request("alice")
    };
    let err = f.hostel.create(req, &Quiet).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.to_string().contains("runs containers inside"), "{err}");
    assert!(err.hint().unwrap().contains("kind = \"incus\""), "{err:?}");
    assert!(f.hostel.store().tenant(&name("alice")).unwrap().is_none());
    assert!(!f.storage.exists(&name("alice")));
    assert!(
        !f.fake.calls().iter().any(|c| c.starts_with("create ")),
        "{:?}",
        f.fake.calls()
    );
    // Nor is it built there.
    let err = f
        .hostel
        .image_build_profile(hostel_core::ImageProfile::Docker, false, &Quiet)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::NestingUnsupported { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_disk_io_limit_is_given_at_the_next_start() {
    let f = fixture();
    let alice = name("alice");
    let req = CreateRequest {
        disk_io: Some(hostel_core::DiskIo::Ops(500)),
        ..request("alice")
    };
    let info = f.hostel.create(req, &Quiet).await.unwrap();
    assert_eq!(info.summary.quota.disk_io, hostel_core::DiskIo::Ops(500));
    assert_eq!(
        f.fake.spec("hostel-alice").unwrap().disk_io,
        hostel_core::DiskIo::Ops(500)
    );
    let to = hostel_core::DiskIo::Bytes(ByteSize::mib(20));
    let change = QuotaChange {
        disk_io: Some(to),
        ..QuotaChange::default()
    };
    let out = f
        .hostel
        .set(&alice, change, None, None, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (out[0].field, out[0].from.as_str(), out[0].to.as_str()),
        ("disk_io", "500iops", "20MiB/s")
    );
    assert!(
        out[0].applied.starts_with("next start"),
        "{}",
        out[0].applied
    );
    assert!(f.hostel.info(&alice).await.unwrap().stale);
    f.hostel.stop(&alice).await.unwrap();
    f.hostel.start(&alice, &Quiet).await.unwrap();
    assert_eq!(f.fake.spec("hostel-alice").unwrap().disk_io, to);
    assert!(!f.hostel.info(&alice).await.unwrap().stale);
    // A tenant without one gets [defaults] disk_io, none unless set.
    f.hostel.create(request("bob"), &Quiet).await.unwrap();
    assert!(f.fake.spec("hostel-bob").unwrap().disk_io.is_unlimited());
}

#[tokio::test]
async fn an_archive_whose_ttl_ran_out_imports_without_one() {
    let f = fixture();
    let h = &f.hostel;
    let past = h.now() - chrono::Duration::hours(1);
    let req = CreateRequest {
        policy: hostel_core::policy::Policy {
            expires_at: Some(past),
            ephemeral: true,
            ..Default::default()
        },
        ..request("alice")
    };
    h.create(req, &Quiet).await.unwrap();
    let archive = exported(h, "alice").await;
    h.import(upload(archive), import_as("bob"), &Quiet)
        .await
        .unwrap();
    let bob = h.store().require(&name("bob")).unwrap();
    assert_eq!(bob.policy.expires_at, None);
    assert!(!bob.policy.ephemeral, "the daemon would purge it at once");
}

/// Regression: one tenant took all 128 of root's inotify instances, which every workspace and
/// the host share; the 17th Incus workspace then never started. The first workspace a process
/// makes raises those counts first, once, and audits each raise.
#[tokio::test]
async fn the_first_workspace_raises_the_kernel_counts_every_workspace_shares() {
    let sys = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sys.path().join("fs/inotify")).unwrap();
    std::fs::create_dir_all(sys.path().join("user")).unwrap();
    for key in kernel::SHARED_KERNEL_COUNTS {
        std::fs::write(sys.path().join(key), "128\n").unwrap();
    }
    std::fs::write(sys.path().join("user/max_user_namespaces"), "4294967295\n").unwrap();
    std::fs::remove_file(sys.path().join("user/max_time_namespaces")).unwrap();
    let f = fixture();
    let h = Arc::try_unwrap(f.hostel)
        .ok()
        .unwrap()
        .with_kernel_settings(sys.path());
    h.create(request("alice"), &Quiet).await.unwrap();
    let read = |k: &str| std::fs::read_to_string(sys.path().join(k)).unwrap();
    assert_eq!(read("fs/inotify/max_user_instances"), "2147483647");
    assert_eq!(read("user/max_uts_namespaces"), "2147483647");
    assert_eq!(
        read("user/max_user_namespaces"),
        "4294967295\n",
        "never lowered"
    );
    let raises: Vec<_> = h
        .audit_log()
        .query(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.event.kind.starts_with("host.kernel.raise"))
        .map(|r| r.event.detail["key"].clone())
        .collect();
    assert_eq!(raises.len(), kernel::SHARED_KERNEL_COUNTS.len() - 2);
    assert!(raises.contains(&"fs.inotify.max_user_watches".to_owned()));
    // Lowered behind its back, it is not looked at again by this process.
    std::fs::write(sys.path().join("fs/inotify/max_user_instances"), "128\n").unwrap();
    h.create(request("bob"), &Quiet).await.unwrap();
    assert_eq!(read("fs/inotify/max_user_instances"), "128\n");
    assert!(h.ensure_kernel_counts().await.unwrap().is_empty());
}
