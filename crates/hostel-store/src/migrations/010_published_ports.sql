-- Ports a tenant publishes at PORT--TENANT.<[http] domain>: to its own browser session only,
-- or (public = 1) to anyone.
CREATE TABLE published_ports (
    tenant     TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    public     INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, port)
);
