-- Whether a tenant's home was there before the tenant was created (its create adopted it). A
-- create that dies part-way is rolled back by the reconciler, which removes the home only when
-- the create made it. Tenants made before this column existed count as adopted: never removed.
ALTER TABLE tenants ADD COLUMN adopted_home INTEGER NOT NULL DEFAULT 1;
