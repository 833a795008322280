-- Faster listings.
--
-- Each image row also carries its tags (a sorted JSON array) and properties
-- (a JSON object), written in the same transaction as image_tags and
-- image_properties. Those child tables stay the source for filtering; the
-- copies let a listing page be one plain range read of images instead of two
-- correlated aggregate subqueries per row.
ALTER TABLE images ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE images ADD COLUMN properties_json TEXT NOT NULL DEFAULT '{}';
UPDATE images i SET
    tags_json = coalesce((SELECT json_agg(t.value ORDER BY t.value)::text FROM image_tags t WHERE t.image_id = i.id), '[]'),
    properties_json = coalesce((SELECT json_object_agg(p.name, p.value ORDER BY p.name)::text FROM image_properties p WHERE p.image_id = i.id), '{}')
WHERE i.deleted_at IS NULL;

-- Exact-match filters on hashes (Glance filters on any image column).
CREATE INDEX images_checksum ON images (checksum, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_os_hash_value ON images (os_hash_value, created_at, id) WHERE deleted_at IS NULL;
-- Few distinct algorithms, but an absent one must not walk the catalog.
CREATE INDEX images_os_hash_algo ON images (os_hash_algo, created_at, id) WHERE deleted_at IS NULL;

