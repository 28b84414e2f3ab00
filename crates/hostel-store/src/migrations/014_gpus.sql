-- The GPUs a tenant's workspace gets: 'none', 'all', or a count.
ALTER TABLE tenants ADD COLUMN gpus TEXT NOT NULL DEFAULT 'none';
