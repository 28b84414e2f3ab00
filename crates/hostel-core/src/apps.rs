//! The apps the web gateway proxies into a workspace (JupyterLab, VS Code, a desktop): their
//! names in URLs, the ports they listen on inside the workspace, and which of them an image
//! offers (its `io.hostel.apps` label, set by the image profiles).

use std::fmt;
use std::str::FromStr;

/// The image label listing the apps an image has, space-separated slugs.
pub const APPS_LABEL: &str = "io.hostel.apps";

/// An app reached at `/u/<tenant>/<slug>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebApp {
    /// JupyterLab.
    Jupyter,
    /// VS Code in the browser (code-server).
    Code,
    /// A desktop (XFCE in TigerVNC, shown by noVNC).
    Desktop,
}

impl WebApp {
    /// Every app, in the order pages list them.
    pub const ALL: [WebApp; 3] = [WebApp::Jupyter, WebApp::Code, WebApp::Desktop];

    /// Its name in URLs and in the image label.
    pub fn slug(self) -> &'static str {
        match self {
            WebApp::Jupyter => "jupyter",
            WebApp::Code => "code",
            WebApp::Desktop => "desktop",
        }
    }

    /// Its name on pages.
    pub fn title(self) -> &'static str {
        match self {
            WebApp::Jupyter => "JupyterLab",
            WebApp::Code => "VS Code",
            WebApp::Desktop => "Desktop",
        }
    }

    /// The TCP port it listens on, on the workspace's own address.
    pub fn port(self) -> u16 {
        match self {
            WebApp::Jupyter => 8888,
            WebApp::Code => 8443,
            WebApp::Desktop => 6080,
        }
    }

    /// The path prefix it is served under for `tenant`, with both slashes.
    pub fn prefix(self, tenant: &str) -> String {
        format!("/u/{tenant}/{}/", self.slug())
    }

    /// Whether the gateway removes the prefix before passing a request on: JupyterLab is told
    /// its prefix (`base_url`) and wants it kept; code-server and noVNC use relative URLs.
    pub fn strips_prefix(self) -> bool {
        !matches!(self, WebApp::Jupyter)
    }

    /// Where the portal's button leads, below the prefix: noVNC's page with the options that
    /// connect its WebSocket back through the gateway.
    pub fn entry(self, tenant: &str) -> String {
        match self {
            WebApp::Desktop => format!(
                "vnc.html?path=u/{tenant}/desktop/websockify&autoconnect=1&resize=remote&reconnect=1"
            ),
            WebApp::Jupyter => "lab".to_owned(),
            WebApp::Code => String::new(),
        }
    }

    /// The apps an image offers, from its [`APPS_LABEL`] value; unknown words are skipped (a
    /// newer image on an older hostel).
    pub fn from_label(label: &str) -> Vec<WebApp> {
        WebApp::ALL
            .into_iter()
            .filter(|app| label.split_whitespace().any(|w| w == app.slug()))
            .collect()
    }
}

impl fmt::Display for WebApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// A word that names no app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("app {0:?}: not one of jupyter, code, desktop")]
pub struct UnknownApp(pub String);

impl FromStr for WebApp {
    type Err = UnknownApp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebApp::ALL
            .into_iter()
            .find(|app| app.slug() == s)
            .ok_or_else(|| UnknownApp(s.to_owned()))
    }
}

/// What an origin under `[http] domain` serves, from its first DNS label: `A--T` is app `A`
/// of tenant `T`, `PORT--T` a port `T` published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppOrigin {
    /// A tenant's app.
    App {
        /// The app.
        app: WebApp,
        /// Whose.
        tenant: crate::TenantName,
    },
    /// A port a tenant published (`hostel port publish`).
    Port {
        /// The port inside the workspace.
        port: u16,
        /// Whose.
        tenant: crate::TenantName,
    },
}

impl AppOrigin {
    /// The origin a request's `Host` (`name` or `name:port`) names under `domain`; `None`
    /// for `domain` itself and for any other name.
    pub fn from_host(host: &str, domain: &str) -> Option<AppOrigin> {
        let host = host.to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
            _ => host.as_str(),
        };
        let label = name.strip_suffix(domain)?.strip_suffix('.')?;
        let (what, tenant) = label.split_once("--")?;
        let tenant = tenant.parse().ok()?;
        if let Ok(app) = what.parse::<WebApp>() {
            return Some(AppOrigin::App { app, tenant });
        }
        // Digits only, no sign or leading zero: one port, one name.
        let port = what
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0 && p.to_string() == what)?;
        Some(AppOrigin::Port { port, tenant })
    }

    /// The tenant it belongs to.
    pub fn tenant(&self) -> &crate::TenantName {
        match self {
            AppOrigin::App { tenant, .. } | AppOrigin::Port { tenant, .. } => tenant,
        }
    }

    /// Its host name under `domain` (no port).
    pub fn host(&self, domain: &str) -> String {
        match self {
            AppOrigin::App { app, tenant } => format!("{app}--{tenant}.{domain}"),
            AppOrigin::Port { port, tenant } => format!("{port}--{tenant}.{domain}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_origins_parse_from_the_host_and_back() {
        let alice: crate::TenantName = "alice".parse().unwrap();
        let d = "hostel.test";
        let app = AppOrigin::App {
            app: WebApp::Jupyter,
            tenant: alice.clone(),
        };
        assert_eq!(
            AppOrigin::from_host("jupyter--alice.hostel.test:8080", d),
            Some(app.clone())
        );
        assert_eq!(app.host(d), "jupyter--alice.hostel.test");
        let port = AppOrigin::Port {
            port: 8000,
            tenant: "my-app".parse().unwrap(),
        };
        assert_eq!(
            AppOrigin::from_host("8000--MY-APP.Hostel.Test", d),
            Some(port.clone())
        );
        assert_eq!(port.host(d), "8000--my-app.hostel.test");
        for other in [
            "hostel.test",
            "hostel.test:8080",
            "alice.hostel.test",
            "x.jupyter--alice.hostel.test",
            "jupyter--alice.other.test",
            "jupyter--alice.evilhostel.test",
            "terminal--alice.hostel.test",
            "0--alice.hostel.test",
            "08000--alice.hostel.test",
            "+8000--alice.hostel.test",
            "70000--alice.hostel.test",
            "jupyter--Not_A_Name.hostel.test",
            "jupyter--.hostel.test",
        ] {
            assert_eq!(AppOrigin::from_host(other, d), None, "{other}");
        }
    }

    #[test]
    fn slugs_parse_back() {
        for app in WebApp::ALL {
            assert_eq!(app.slug().parse::<WebApp>(), Ok(app));
        }
        assert_eq!(
            "terminal".parse::<WebApp>(),
            Err(UnknownApp("terminal".into()))
        );
    }

    #[test]
    fn label_lists_known_apps_in_page_order() {
        assert_eq!(
            WebApp::from_label("desktop  jupyter future-app"),
            vec![WebApp::Jupyter, WebApp::Desktop]
        );
        assert_eq!(WebApp::from_label(""), vec![]);
    }

    #[test]
    fn prefixes_and_entries() {
        assert_eq!(WebApp::Jupyter.prefix("alice"), "/u/alice/jupyter/");
        assert!(!WebApp::Jupyter.strips_prefix());
        assert!(WebApp::Code.strips_prefix());
        assert_eq!(
            WebApp::Desktop.entry("alice"),
            "vnc.html?path=u/alice/desktop/websockify&autoconnect=1&resize=remote&reconnect=1"
        );
    }
}
