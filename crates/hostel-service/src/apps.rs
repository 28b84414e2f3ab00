//! Web apps in a workspace (JupyterLab, VS Code, a desktop): which the tenant's image offers,
//! and starting one on demand. The workspace's supervisor, `hostel-app` (in the image), starts
//! the app as the tenant unless it runs and returns once it listens; the gateway then proxies
//! to the workspace's own address, which only the host can reach (see the packet filter).

use crate::{Hostel, ServiceError};
use hostel_core::apps::APPS_LABEL;
use hostel_core::{TenantName, WebApp};
use std::net::SocketAddr;

impl Hostel {
    /// The apps the tenant's image offers, in page order.
    pub async fn web_apps(&self, name: &TenantName) -> Result<Vec<WebApp>, ServiceError> {
        let t = self.store.require(name)?;
        let label = self
            .runtime
            .image(&t.image)
            .await?
            .and_then(|i| i.labels.get(APPS_LABEL).cloned())
            .unwrap_or_default();
        Ok(WebApp::from_label(&label))
    }

    /// When the tenant was made: a name given again after a purge is another tenant, and
    /// what was known of the first one (its apps' addresses) is not the second's.
    pub fn tenant_incarnation(&self, name: &TenantName) -> Result<String, ServiceError> {
        Ok(self.store.require(name)?.created_at.to_rfc3339())
    }

    /// Wakes the workspace, starts `app` in it unless it runs, and says where it listens.
    pub async fn app_endpoint(
        &self,
        name: &TenantName,
        app: WebApp,
    ) -> Result<SocketAddr, ServiceError> {
        let t = self.store.require(name)?;
        if !self.web_apps(name).await?.contains(&app) {
            return Err(ServiceError::AppMissing {
                tenant: name.to_string(),
                app: app.title().to_owned(),
                image: t.image,
            });
        }
        let prefix = app.prefix(name.as_str());
        let (code, _, err) = self
            .exec_capture(name, &["hostel-app", "start", app.slug(), &prefix])
            .await?;
        if code != 0 {
            return Err(ServiceError::AppFailed {
                tenant: name.to_string(),
                app: app.slug().to_owned(),
                reason: String::from_utf8_lossy(&err).trim().to_owned(),
            });
        }
        let address = self.workspace_address(name).await?;
        Ok(SocketAddr::new(address, app.port()))
    }
}
