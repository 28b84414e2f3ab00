-- The web gateway: each tenant's web password (an argon2id PHC string, never the password) and
-- its signed-in browser sessions (by the SHA-256 of the cookie's value).
CREATE TABLE web_passwords (
    tenant TEXT PRIMARY KEY REFERENCES tenants (name) ON DELETE CASCADE,
    hash   TEXT NOT NULL,
    set_at TEXT NOT NULL
);

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
