//! Web apps in a workspace (JupyterLab, VS Code, a desktop): which the tenant's image offers,
//! and starting one on demand. The workspace's supervisor, `hostel-app` (in the image), starts
//! the app as the tenant unless it runs and returns once it listens on the workspace's
//! loopback; the gateway then proxies to it through [`Hostel::workspace_connect`].

use crate::{Hostel, ServiceError};
use hostel_core::apps::APPS_LABEL;
use hostel_core::{TenantName, WebApp};
use hostel_runtime::{Connection, Loopback};

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

    /// Wakes the workspace, starts `app` in it unless it runs, and says on which port of the
    /// workspace's loopback it listens.
    pub async fn app_endpoint(&self, name: &TenantName, app: WebApp) -> Result<u16, ServiceError> {
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
        Ok(app.port())
    }

    /// Opens a connection to `port` on the loopback of the tenant's running workspace (it
    /// does not wake it: a stopped one is a conflict), for the gateway's proxy to an app or a
    /// published port it woke before.
    pub async fn workspace_connect(
        &self,
        name: &TenantName,
        port: u16,
    ) -> Result<Connection, ServiceError> {
        self.store.require(name)?;
        Ok(self
            .runtime
            .connect(&crate::spec::container_name(name), port, Loopback::V4)
            .await?)
    }
}
