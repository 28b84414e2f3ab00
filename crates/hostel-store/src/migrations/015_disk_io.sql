-- How fast a tenant's workspace may read and write its disks: 'none', '<size>/s' or '<n>iops'.
ALTER TABLE tenants ADD COLUMN disk_io TEXT NOT NULL DEFAULT 'none';
