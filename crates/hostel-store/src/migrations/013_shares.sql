-- Shared datasets: a host folder (`path`, resolved when added) mounted read-only at
-- /shared/<name> in the workspaces of the tenants in share_tenants, or of every tenant when
-- `all_tenants` is set.
CREATE TABLE shares (
    name        TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    all_tenants INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE share_tenants (
    share  TEXT NOT NULL REFERENCES shares (name) ON DELETE CASCADE,
    tenant TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    PRIMARY KEY (share, tenant)
);
