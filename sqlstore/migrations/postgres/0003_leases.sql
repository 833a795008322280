-- Upload leases. An image being uploaded (status saving) carries the claim of
-- the process moving its bytes: a lease id (which also names the blob being
-- written), the holder (host:pid, for operators) and an expiry in unix
-- microseconds that the holder renews while it works. An image whose lease
-- expired was abandoned (its process crashed or hung); any process may
-- recover it.
ALTER TABLE images ADD COLUMN lease_id TEXT;
ALTER TABLE images ADD COLUMN lease_holder TEXT;
ALTER TABLE images ADD COLUMN lease_expires BIGINT;

-- Recovery looks for expired leases; only the few images that hold a lease
-- are in this index, so the periodic sweep costs nothing on a large catalog.
CREATE INDEX images_lease_expires ON images (lease_expires, id) WHERE lease_expires IS NOT NULL AND deleted_at IS NULL;
