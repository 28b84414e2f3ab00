//! Each tenant's own network, and the host packet filter that keeps workspaces off the host and
//! away from each other. A workspace is attached only to its tenant's bridge (`hostel-<tenant>`),
//! whose subnet comes from `[network] pool`; with egress `none` the bridge is internal (no route
//! out). The filter's rules go in before the first workspace of this process is made, and the
//! daemon checks them at every lifecycle tick.

use crate::spec::container_name;
use crate::{Hostel, ServiceError};
use hostel_core::network::{Egress, bridge_name, free_subnet};
use hostel_core::{Outcome, TenantName};
use hostel_runtime::netfilter::FilterRules;
use hostel_runtime::{LABEL_INSTANCE, LABEL_MANAGED, LABEL_TENANT, NetworkSpec, RuntimeError};
use hostel_store::TenantRecord;
use rand::RngExt;
use std::sync::atomic::Ordering;

/// The engine name of the network image builds download through, where they need one.
pub(crate) const BUILD_NETWORK: &str = "hostel--build";

/// How often a create looks for a free subnet again after the engine refused one that another
/// command took meanwhile.
const SUBNET_TRIES: usize = 32;

impl Hostel {
    /// The engine name of a tenant's network.
    pub(crate) fn network_name(tenant: &TenantName) -> String {
        container_name(tenant)
    }

    /// The packet-filter rules this configuration asks for.
    pub fn filter_rules(&self) -> FilterRules {
        FilterRules {
            prefix: self.config.network.interface_prefix.clone(),
            pool: self.config.network.pool.to_string(),
            deny: self
                .config
                .network
                .deny
                .iter()
                .map(ToString::to_string)
                .collect(),
            connections_max: self.config.network.connections_max,
        }
    }

    /// What filters packets, for `check`.
    pub fn filter_kind(&self) -> &'static str {
        self.filter.describe()
    }

    /// Installs the packet-filter rules once per process (they are checked, not rewritten,
    /// when already in force).
    pub async fn ensure_filter(&self) -> Result<(), ServiceError> {
        self.ensure_kernel_counts().await?;
        if self.filter_applied.load(Ordering::Acquire) {
            return Ok(());
        }
        self.filter.apply(&self.filter_rules()).await?;
        self.filter_applied.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the rules are in force.
    pub async fn check_filter(&self) -> Result<bool, ServiceError> {
        Ok(self.filter.check(&self.filter_rules()).await?)
    }

    /// Whether the rules are in force; puts them back (and records it) when they are not.
    pub async fn repair_filter(&self) -> Result<bool, ServiceError> {
        let rules = self.filter_rules();
        if self.filter.check(&rules).await? {
            return Ok(true);
        }
        let result = self.filter.apply(&rules).await;
        let ev = match &result {
            Ok(()) => self.event("network.filter.repair", Outcome::Ok),
            Err(e) => self
                .event("network.filter.repair", Outcome::Failed)
                .with("error", e.to_string()),
        };
        self.record(ev.with("prefix", &rules.prefix))?;
        result?;
        Ok(false)
    }

    /// Removes this configuration's packet-filter rules (`hostel network remove-filter`).
    pub async fn remove_filter(&self) -> Result<(), ServiceError> {
        let prefix = self.config.network.interface_prefix.clone();
        self.filter.remove(&prefix).await?;
        self.filter_applied.store(false, Ordering::Release);
        self.record(
            self.event("network.filter.remove", Outcome::Ok)
                .with("prefix", prefix),
        )
    }

    /// Makes the tenant's network when it is missing, or re-makes it when its egress is not the
    /// tenant's (its workspace must be gone by then), after the packet filter is in place.
    pub(crate) async fn ensure_network(&self, t: &TenantRecord) -> Result<String, ServiceError> {
        let name = Self::network_name(&t.name);
        let internal = t.egress == Egress::None;
        self.ensure_network_named(&name, t.name.as_str(), internal, Some(&t.name))
            .await
    }

    /// The network image builds download through on engines that build on one of hostel's
    /// ([`hostel_runtime::EngineInfo::build_network`]): a tenant network in all but name,
    /// with egress, the packet filter's rules and NAT (`hostel--build`, a name no tenant
    /// can have).
    pub(crate) async fn ensure_build_network(&self) -> Result<String, ServiceError> {
        self.ensure_network_named(BUILD_NETWORK, "-build", false, None)
            .await
    }

    /// Removes the build network; a build that runs meanwhile on another command keeps it
    /// (the engine refuses to remove a network in use).
    pub(crate) async fn remove_build_network(&self) {
        if let Err(e) = self.runtime.network_remove(BUILD_NETWORK).await {
            tracing::info!(error = %e, "the build network stays");
        }
    }

    /// Makes the network `name` (its bridge named after `seed`) when it is missing, or
    /// re-makes it when its egress is not `internal`'s, after the packet filter is in place.
    async fn ensure_network_named(
        &self,
        name: &str,
        seed: &str,
        internal: bool,
        tenant: Option<&TenantName>,
    ) -> Result<String, ServiceError> {
        self.ensure_filter().await?;
        let name = name.to_owned();
        match self.runtime.network_inspect(&name).await? {
            Some(n) if n.internal == internal => return Ok(name),
            Some(_) => self.runtime.network_remove(&name).await?,
            None => {}
        }
        let n = &self.config.network;
        let mut labels = self.config.engine.labels.clone();
        labels.insert(LABEL_MANAGED.into(), "1".into());
        if let Some(t) = tenant {
            labels.insert(LABEL_TENANT.into(), t.to_string());
        }
        labels.insert(LABEL_INSTANCE.into(), self.instance.clone());
        for attempt in 0..SUBNET_TRIES {
            // The first free subnet first; after a clash, one of the next few at random, so
            // creates racing for the same one spread out.
            let skip = if attempt == 0 {
                0
            } else {
                rand::rng().random_range(0..attempt * 4)
            };
            let used: Vec<ipnet::Ipv4Net> = self
                .runtime
                .networks(&[])
                .await?
                .iter()
                .flat_map(|net| net.subnets.iter().filter_map(|s| s.parse().ok()))
                .collect();
            let Some(subnet) = free_subnet(n.pool, n.subnet_prefix, &used, skip) else {
                return Err(ServiceError::NetworkPoolFull {
                    pool: n.pool.to_string(),
                });
            };
            // Egress-none bridges are `<prefix>n...`: one rule drops whatever they send out.
            let prefix = if internal {
                format!("{}n", n.interface_prefix)
            } else {
                n.interface_prefix.clone()
            };
            let spec = NetworkSpec {
                name: name.clone(),
                bridge: bridge_name(&prefix, &self.instance, seed),
                subnet: subnet.to_string(),
                internal,
                labels: labels.clone(),
            };
            match self.runtime.network_create(&spec).await {
                Ok(_) => return Ok(name),
                // Made meanwhile by another command for this tenant: use it.
                Err(RuntimeError::Conflict { .. })
                    if self
                        .runtime
                        .network_inspect(&name)
                        .await?
                        .is_some_and(|net| net.internal == internal) =>
                {
                    return Ok(name);
                }
                // The subnet was taken meanwhile: try the next free one.
                Err(RuntimeError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::NetworkPoolFull {
            pool: n.pool.to_string(),
        })
    }

    /// The running workspace's address on its network and that network's gateway (the
    /// subnet's first host), as the engine says; `None` while it does not run.
    pub async fn workspace_addresses(
        &self,
        tenant: &TenantName,
    ) -> Result<Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>, ServiceError> {
        self.store.require(tenant)?;
        let name = Self::network_name(tenant);
        let Some(info) = self.runtime.inspect(&container_name(tenant)).await? else {
            return Ok(None);
        };
        let Some(address) = info.addresses.get(&name).and_then(|a| a.parse().ok()) else {
            return Ok(None);
        };
        let gateway = self
            .runtime
            .network_inspect(&name)
            .await?
            .and_then(|n| n.subnets.first()?.parse::<ipnet::Ipv4Net>().ok())
            .and_then(|s| s.hosts().next());
        Ok(gateway.map(|g| (address, g)))
    }

    /// How many bytes of the workspace's own output (its init's, which root inside can write
    /// to) the engine holds on the host.
    pub async fn workspace_output_bytes(&self, tenant: &TenantName) -> Result<u64, ServiceError> {
        self.store.require(tenant)?;
        Ok(self
            .runtime
            .output_log_bytes(&container_name(tenant))
            .await?)
    }

    /// Removes the tenant's network (its workspace must be gone).
    pub(crate) async fn remove_network(&self, tenant: &TenantName) -> Result<(), ServiceError> {
        Ok(self
            .runtime
            .network_remove(&Self::network_name(tenant))
            .await?)
    }
}
