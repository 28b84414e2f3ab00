-- A ban may hold for one login name only (a tenant guessed at from one address), so that one
-- client's failures do not lock out everyone else behind the same address. '' : every name.
CREATE TABLE bans_scoped (
    address    TEXT NOT NULL,
    tenant     TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (address, tenant)
);
INSERT INTO bans_scoped (address, reason, created_at, expires_at)
    SELECT address, reason, created_at, expires_at FROM bans;
DROP TABLE bans;
ALTER TABLE bans_scoped RENAME TO bans;
