-- One-time sign-in links for the web gateway (agents, first logins): the SHA-256 of the link's
-- token, until when it works, and when it was used (once).
CREATE TABLE login_links (
    id_hash    TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
