-- Lifecycle policies per tenant: a time to live, whether the home goes with it, autostart
-- with the daemon, an idle-stop override, and when the tenant was last active.
ALTER TABLE tenants ADD COLUMN expires_at TEXT;
ALTER TABLE tenants ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN autostart INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN idle_stop_secs INTEGER;
ALTER TABLE tenants ADD COLUMN last_active_at TEXT;
