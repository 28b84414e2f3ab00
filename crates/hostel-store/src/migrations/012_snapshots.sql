-- Snapshots. `restoring` names the snapshot a restore is putting back (the tenant reads as
-- `restoring` until it is done; the reconciler finishes a restore whose process died), and each
-- tenant may have a schedule: one snapshot every `snapshot_every`, the newest `snapshot_keep`
-- kept.
ALTER TABLE tenants ADD COLUMN restoring TEXT;
ALTER TABLE tenants ADD COLUMN snapshot_every TEXT;
ALTER TABLE tenants ADD COLUMN snapshot_keep INTEGER;
