//! From the service's types to the wire model, and from requests to checked service input.

use crate::{
    AuditEntry, Ban, Built, Change, CheckItem, Finding, Image, Key, NewTenant, PublishedPort,
    ScheduleChange, Share, Snapshot, SnapshotList, SnapshotSchedule, Tenant, TenantChange,
    TenantDetail, Token,
};
use chrono::{DateTime, Utc};
use hostel_core::policy::{Policy, PolicyChange};
use hostel_core::{ByteSize, Cpus, QuotaChange, SshPublicKey, TenantName};
use hostel_service::{CreateRequest, ServiceError, TenantInfo, TenantSummary};

impl From<&TenantSummary> for Tenant {
    fn from(t: &TenantSummary) -> Self {
        Tenant {
            name: t.name.clone(),
            status: t.status.to_string(),
            state: t.state.to_string(),
            image: t.image.clone(),
            cpus: t.quota.cpus.to_string(),
            memory: t.quota.memory.to_string(),
            disk: t.quota.disk.to_string(),
            pids: t.quota.pids,
            gpus: t.quota.gpus.to_string(),
            disk_io: t.quota.disk_io.to_string(),
        }
    }
}

impl TenantDetail {
    /// The detail of `info`; `default_idle_stop_secs` is `[lifecycle] idle_stop_secs`.
    pub fn new(i: &TenantInfo, default_idle_stop_secs: u64) -> Self {
        TenantDetail {
            tenant: Tenant::from(&i.summary),
            desired: i.desired.to_string(),
            container: i.container.clone(),
            home: i.home.clone(),
            stale: i.stale,
            uptime_secs: i.uptime_secs,
            cpu_seconds: i.usage.as_ref().map(|u| u.cpu_seconds),
            memory_used_bytes: i.usage.as_ref().map(|u| u.memory_used.as_u64()),
            pids_used: i.usage.as_ref().map(|u| u.pids),
            oom_kills: i.usage.as_ref().map(|u| u.oom_kills),
            disk_used_bytes: i.disk_used.map(ByteSize::as_u64),
            keys: i.keys,
            created_at: i.created_at.clone(),
            expires_at: i.policy.expires_at,
            ephemeral: i.policy.ephemeral,
            autostart: i.policy.autostart,
            idle_stop_secs: i.policy.idle_stop_secs.unwrap_or(default_idle_stop_secs),
            idle_stop_default: i.policy.idle_stop_secs.is_none(),
            egress: i.egress.to_string(),
        }
    }
}

fn size(v: Option<&str>) -> Result<Option<ByteSize>, ServiceError> {
    Ok(v.map(str::parse::<ByteSize>).transpose()?)
}

fn gpus(v: Option<&str>) -> Result<Option<hostel_core::Gpus>, ServiceError> {
    Ok(v.map(str::parse::<hostel_core::Gpus>).transpose()?)
}

fn disk_io(v: Option<&str>) -> Result<Option<hostel_core::DiskIo>, ServiceError> {
    Ok(v.map(str::parse::<hostel_core::DiskIo>).transpose()?)
}

fn cpus(v: Option<&str>) -> Result<Option<Cpus>, ServiceError> {
    Ok(v.map(str::parse::<Cpus>).transpose()?)
}

impl NewTenant {
    /// Checks every field and makes the service's request; a TTL counts from `now`.
    pub fn into_request(self, now: DateTime<Utc>) -> Result<CreateRequest, ServiceError> {
        let name = self.name.parse::<TenantName>()?;
        if self.keys.is_empty() {
            return Err(ServiceError::NoKeys {
                tenant: name.to_string(),
            });
        }
        let keys = self
            .keys
            .iter()
            .map(|k| k.parse::<SshPublicKey>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CreateRequest {
            name,
            keys,
            cpus: cpus(self.cpus.as_deref())?,
            memory: size(self.memory.as_deref())?,
            disk: size(self.disk.as_deref())?,
            pids: self.pids,
            gpus: gpus(self.gpus.as_deref())?,
            disk_io: disk_io(self.disk_io.as_deref())?,
            image: self.image,
            policy: Policy::from_settings(
                self.ttl.as_deref(),
                self.ephemeral,
                self.autostart,
                self.idle_stop.as_deref(),
                now,
            )?,
            egress: self.egress.as_deref().map(str::parse).transpose()?,
        })
    }
}

impl crate::ImportQuery {
    /// Checks every field and makes the service's request.
    pub fn into_request(self) -> Result<hostel_service::ImportRequest, ServiceError> {
        Ok(hostel_service::ImportRequest {
            name: self.name.as_deref().map(str::parse).transpose()?,
            disk: size(self.disk.as_deref())?,
            image: self.image,
        })
    }
}

/// A [`TenantChange`], checked.
#[derive(Debug, Clone)]
pub struct Parts {
    /// New limits.
    pub quota: QuotaChange,
    /// New image.
    pub image: Option<String>,
    /// New egress.
    pub egress: Option<hostel_core::network::Egress>,
    /// New policies.
    pub policy: PolicyChange,
}

impl TenantChange {
    /// Checks every field: the quota change, the image, the policy change.
    pub fn into_parts(self) -> Result<Parts, ServiceError> {
        let quota = QuotaChange {
            cpus: cpus(self.cpus.as_deref())?,
            memory: size(self.memory.as_deref())?,
            disk: size(self.disk.as_deref())?,
            pids: self.pids,
            gpus: gpus(self.gpus.as_deref())?,
            disk_io: disk_io(self.disk_io.as_deref())?,
        };
        let policy = PolicyChange::from_settings(
            self.ttl.as_deref(),
            self.ephemeral,
            self.autostart,
            self.idle_stop.as_deref(),
        )?;
        Ok(Parts {
            quota,
            image: self.image,
            egress: self.egress.as_deref().map(str::parse).transpose()?,
            policy,
        })
    }
}

impl From<hostel_service::SetOutcome> for Change {
    fn from(o: hostel_service::SetOutcome) -> Self {
        Change {
            field: o.field.to_owned(),
            from: o.from,
            to: o.to,
            applied: o.applied.to_owned(),
        }
    }
}

impl From<hostel_store::PublishedPort> for PublishedPort {
    fn from(p: hostel_store::PublishedPort) -> Self {
        PublishedPort {
            port: p.port,
            public: p.public,
            created_at: p.created_at,
        }
    }
}

impl From<hostel_service::SnapshotView> for Snapshot {
    fn from(s: hostel_service::SnapshotView) -> Self {
        Snapshot {
            name: s.name.to_string(),
            taken_at: s.taken_at,
            exclusive_bytes: s.exclusive.map(|b| b.as_u64()),
            system: s.system,
            scheduled: s.scheduled,
        }
    }
}

impl From<hostel_core::snapshot::Schedule> for SnapshotSchedule {
    fn from(s: hostel_core::snapshot::Schedule) -> Self {
        SnapshotSchedule {
            every: s.every.to_string(),
            keep: s.keep,
        }
    }
}

impl SnapshotList {
    /// The list as the service gives it.
    pub fn new(
        (snapshots, schedule): (
            Vec<hostel_service::SnapshotView>,
            Option<hostel_core::snapshot::Schedule>,
        ),
    ) -> Self {
        SnapshotList {
            schedule: schedule.map(Into::into),
            snapshots: snapshots.into_iter().map(Into::into).collect(),
        }
    }
}

impl ScheduleChange {
    /// The schedule asked for (`None`: off).
    pub fn schedule(&self) -> Result<Option<hostel_core::snapshot::Schedule>, ServiceError> {
        if self.every == "off" {
            return Ok(None);
        }
        Ok(Some(hostel_core::snapshot::Schedule {
            every: self
                .every
                .parse()
                .map_err(|_| ServiceError::UnknownSchedule {
                    every: self.every.clone(),
                })?,
            keep: self.keep.unwrap_or(7),
        }))
    }
}

impl From<hostel_store::ShareRecord> for Share {
    fn from(s: hostel_store::ShareRecord) -> Self {
        Share {
            name: s.name.to_string(),
            path: s.path,
            tenants: s
                .tenants
                .map(|t| t.into_iter().map(|n| n.to_string()).collect()),
            created_at: s.created_at,
        }
    }
}

impl crate::NewShare {
    /// The checked name and tenants.
    pub fn parts(
        &self,
    ) -> Result<(hostel_core::share::ShareName, Option<Vec<TenantName>>), ServiceError> {
        let tenants = self
            .tenants
            .as_ref()
            .map(|t| {
                t.iter()
                    .map(|n| n.parse::<TenantName>().map_err(ServiceError::from))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok((self.name.parse()?, tenants))
    }
}

impl From<hostel_store::KeyRecord> for Key {
    fn from(k: hostel_store::KeyRecord) -> Self {
        Key {
            fingerprint: k.key.fingerprint,
            algorithm: k.key.algorithm,
            comment: k.key.comment,
            added_at: k.added_at,
        }
    }
}

impl From<hostel_service::ImageView> for Image {
    fn from(i: hostel_service::ImageView) -> Self {
        Image {
            reference: i.reference,
            version: i.version,
            id: i.id,
            size: i.size,
            current: i.current,
            tenants: i.tenants,
        }
    }
}

impl From<hostel_service::BuildOutcome> for Built {
    fn from(b: hostel_service::BuildOutcome) -> Self {
        Built {
            reference: b.reference,
            cached: b.cached,
        }
    }
}

impl From<hostel_service::CheckItem> for CheckItem {
    fn from(c: hostel_service::CheckItem) -> Self {
        CheckItem {
            name: c.name.to_owned(),
            ok: c.ok,
            message: c.message,
            hint: c.hint,
        }
    }
}

impl From<hostel_service::Finding> for Finding {
    fn from(f: hostel_service::Finding) -> Self {
        Finding {
            subject: f.subject,
            problem: f.problem,
            fix: f.fix,
            fixed: f.fixed,
        }
    }
}

impl From<hostel_store::AuditRecord> for AuditEntry {
    fn from(r: hostel_store::AuditRecord) -> Self {
        let e = r.event;
        AuditEntry {
            time: e.time,
            kind: e.kind,
            actor: e.actor,
            tenant: e.tenant,
            outcome: match e.outcome {
                hostel_core::Outcome::Ok => "ok",
                hostel_core::Outcome::Failed => "failed",
                hostel_core::Outcome::Denied => "denied",
            }
            .to_owned(),
            detail: e.detail,
            prev: r.prev,
            hash: r.hash,
        }
    }
}

impl From<hostel_store::Ban> for Ban {
    fn from(b: hostel_store::Ban) -> Self {
        Ban {
            address: b.address,
            tenant: b.tenant,
            reason: b.reason,
            created_at: b.created_at,
            expires_at: b.expires_at,
        }
    }
}

impl From<hostel_store::TokenRecord> for Token {
    fn from(t: hostel_store::TokenRecord) -> Self {
        Token {
            name: t.name,
            role: t.role.to_string(),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}

impl crate::NewBan {
    /// The address, how long (`None`: until removed) and why.
    pub fn into_parts(
        self,
    ) -> Result<(std::net::IpAddr, Option<chrono::Duration>, String), ServiceError> {
        let ip =
            self.address
                .parse::<std::net::IpAddr>()
                .map_err(|_| ServiceError::InvalidAddress {
                    address: self.address.clone(),
                })?;
        let duration = self
            .duration
            .as_deref()
            .map(hostel_core::policy::parse_duration)
            .transpose()
            .map_err(hostel_core::policy::PolicyError::from)?;
        let reason = self.reason.unwrap_or_else(|| "banned by an admin".into());
        Ok((ip, duration, reason))
    }
}

impl crate::NewLoginLink {
    /// How long the link works: 15 minutes unless given, at most 7 days.
    pub fn ttl(&self) -> Result<chrono::Duration, ServiceError> {
        let ttl = match self.ttl.as_deref() {
            Some(t) => hostel_core::policy::parse_duration(t)
                .map_err(hostel_core::policy::PolicyError::from)?,
            None => chrono::Duration::minutes(15),
        };
        if ttl <= chrono::Duration::zero() || ttl > chrono::Duration::days(7) {
            return Err(hostel_core::policy::PolicyError::Duration(
                hostel_core::policy::DurationError {
                    input: self.ttl.clone().unwrap_or_default(),
                },
            )
            .into());
        }
        Ok(ttl)
    }
}

impl crate::NewToken {
    /// The role asked for (admin unless given).
    pub fn role(&self) -> Result<hostel_core::Role, ServiceError> {
        Ok(self.role.as_deref().unwrap_or("admin").parse()?)
    }
}
