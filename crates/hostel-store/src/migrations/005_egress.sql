-- Where a tenant's workspace may connect: 'all' (the internet) or 'none'.
ALTER TABLE tenants ADD COLUMN egress TEXT NOT NULL DEFAULT 'all';
