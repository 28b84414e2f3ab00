//! Plain directories, no size limit: for tests of the layers above, never for tenants.

use super::{DiskUsage, HomeStorage};
use crate::RuntimeError;
use hostel_core::{ByteSize, TenantName};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// One directory per tenant under `base`; sizes are only recorded.
#[derive(Debug)]
pub struct DirStorage {
    base: PathBuf,
    sizes: Mutex<HashMap<String, ByteSize>>,
}

impl DirStorage {
    /// Homes under `base/<tenant>/home`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        DirStorage {
            base: base.into(),
            sizes: Mutex::new(HashMap::new()),
        }
    }

    fn host(action: &str) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let action = action.to_owned();
        move |e| RuntimeError::Host {
            action,
            message: e.to_string(),
        }
    }

    fn set_size(&self, tenant: &TenantName, size: ByteSize) {
        self.sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_string(), size);
    }
}

impl HomeStorage for DirStorage {
    fn prepare(&self) -> Result<(), RuntimeError> {
        std::fs::create_dir_all(&self.base).map_err(Self::host("create homes folder"))
    }

    fn capacity(&self) -> ByteSize {
        ByteSize::gib(1024)
    }

    fn home_path(&self, tenant: &TenantName) -> PathBuf {
        self.base.join(tenant.as_str()).join("home")
    }

    fn exists(&self, tenant: &TenantName) -> bool {
        self.home_path(tenant).is_dir()
    }

    fn ensure(&self, tenant: &TenantName, size: ByteSize) -> Result<bool, RuntimeError> {
        let existed = self.exists(tenant);
        std::fs::create_dir_all(self.home_path(tenant)).map_err(Self::host("create home"))?;
        if !existed {
            self.set_size(tenant, size);
        }
        Ok(!existed)
    }

    fn resize(&self, tenant: &TenantName, size: ByteSize) -> Result<(), RuntimeError> {
        self.set_size(tenant, size);
        Ok(())
    }

    fn usage(&self, tenant: &TenantName) -> Result<Option<DiskUsage>, RuntimeError> {
        let sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(sizes.get(tenant.as_str()).map(|&size| DiskUsage {
            used: ByteSize::bytes(0),
            size,
        }))
    }

    fn limit(&self, tenant: &TenantName) -> Result<Option<ByteSize>, RuntimeError> {
        let sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(sizes.get(tenant.as_str()).copied())
    }

    fn is_ready(&self, tenant: &TenantName) -> bool {
        self.exists(tenant)
    }

    fn destroy(&self, tenant: &TenantName) -> Result<(), RuntimeError> {
        let dir = self.base.join(tenant.as_str());
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::host("remove home")(e)),
            _ => {
                self.sizes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(tenant.as_str());
                Ok(())
            }
        }
    }
}
