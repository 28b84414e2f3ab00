-- Admins signed in to the web dashboard with an API token: the session cookie's SHA-256 and the
-- token it stands for. A revoked token's sessions stop working at once (lookups take only live
-- tokens).
CREATE TABLE admin_sessions (
    id_hash    TEXT PRIMARY KEY,
    token      TEXT NOT NULL REFERENCES tokens (name) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
