-- Tenants, their keys, and facts about this hostel instance.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    name         TEXT PRIMARY KEY,
    status       TEXT NOT NULL CHECK (status IN ('creating', 'ready', 'purging')),
    -- What the admin last asked of the workspace; `doctor` compares it with the engine.
    desired      TEXT NOT NULL DEFAULT 'running' CHECK (desired IN ('running', 'stopped', 'deleted')),
    image        TEXT NOT NULL,
    cpus_milli   INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_bytes   INTEGER NOT NULL,
    pids         INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE keys (
    tenant      TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    openssh     TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    PRIMARY KEY (tenant, fingerprint)
);
