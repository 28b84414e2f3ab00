use super::*;
use hostel_core::ErrorCode;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMhq0NaYZbuTK8J5ZxP+VC8V6nL3SFaSRXuHx7UyB2bE alice@laptop";

fn new_tenant() -> NewTenant {
    NewTenant {
        name: "alice".into(),
        keys: vec![KEY.into()],
        ..NewTenant::default()
    }
}

#[test]
fn a_new_tenant_is_checked_field_by_field() {
    let now = Utc::now();
    let ok = new_tenant().into_request(now).unwrap();
    assert_eq!(ok.name.as_str(), "alice");
    assert_eq!(ok.keys.len(), 1);
    let bad = |t: NewTenant| t.into_request(now).unwrap_err().code();
    for t in [
        NewTenant {
            name: "Bad_Name".into(),
            ..new_tenant()
        },
        NewTenant {
            keys: vec![],
            ..new_tenant()
        },
        NewTenant {
            keys: vec!["ssh-ed25519 nope".into()],
            ..new_tenant()
        },
        NewTenant {
            memory: Some("lots".into()),
            ..new_tenant()
        },
        NewTenant {
            cpus: Some("-1".into()),
            ..new_tenant()
        },
        NewTenant {
            ephemeral: true,
            ..new_tenant()
        },
        NewTenant {
            ttl: Some("soon".into()),
            ..new_tenant()
        },
        NewTenant {
            egress: Some("some".into()),
            ..new_tenant()
        },
    ] {
        assert_eq!(bad(t), ErrorCode::InvalidInput);
    }
}

#[test]
fn a_change_splits_into_quota_image_and_policy() {
    let Parts {
        quota: q,
        image,
        egress,
        policy: p,
    } = TenantChange {
        memory: Some("1G".into()),
        image: Some("img:v2".into()),
        ttl: Some("none".into()),
        autostart: Some(true),
        egress: Some("none".into()),
        ..TenantChange::default()
    }
    .into_parts()
    .unwrap();
    assert_eq!(egress, Some(hostel_core::network::Egress::None));
    assert_eq!(q.memory.map(|m| m.to_string()), Some("1GiB".into()));
    assert_eq!(image.as_deref(), Some("img:v2"));
    assert_eq!((p.ttl, p.autostart), (Some(None), Some(true)));
    let err = TenantChange {
        idle_stop: Some("whenever".into()),
        ..TenantChange::default()
    }
    .into_parts()
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
}

#[test]
fn bodies_round_trip_through_json() {
    let detail = TenantDetail {
        tenant: Tenant {
            name: "alice".into(),
            status: "ready".into(),
            state: "running".into(),
            image: "hostel-workspace:v1".into(),
            cpus: "1".into(),
            memory: "1GiB".into(),
            disk: "5GiB".into(),
            gpus: "none".into(),
            disk_io: "none".into(),
            pids: 512,
        },
        desired: "running".into(),
        container: "hostel-alice".into(),
        home: "/srv/hostel/users/alice".into(),
        stale: false,
        uptime_secs: Some(5),
        cpu_seconds: Some(0.5),
        memory_used_bytes: Some(1 << 20),
        pids_used: Some(3),
        oom_kills: Some(0),
        disk_used_bytes: Some(4096),
        keys: 1,
        created_at: "2026-11-23T10:00:00+00:00".into(),
        expires_at: None,
        ephemeral: false,
        autostart: false,
        idle_stop_secs: 1800,
        idle_stop_default: true,
        egress: "all".into(),
    };
    let text = serde_json::to_string(&detail).unwrap();
    let flat: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(flat["memory"], "1GiB", "the tenant's fields sit at the top");
    assert_eq!(serde_json::from_str::<TenantDetail>(&text).unwrap(), detail);
    let err = ErrorBody {
        request_id: None,
        code: "not_found".into(),
        message: "no tenant".into(),
        hint: None,
        causes: vec![],
    };
    let text = serde_json::to_string(&err).unwrap();
    assert!(!text.contains("causes"), "{text}");
    assert_eq!(serde_json::from_str::<ErrorBody>(&text).unwrap(), err);
}
