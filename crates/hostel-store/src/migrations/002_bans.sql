-- Addresses refused by the SSH gateway: banned after failed logins, or by an admin.
CREATE TABLE bans (
    address    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- NULL: until removed by hand.
    expires_at TEXT
);
