-- Faster listings.
--
-- Each image row also carries its tags (a sorted JSON array) and properties
-- (a JSON object), written in the same transaction as image_tags and
-- image_properties. Those child tables stay the source for filtering; the
-- copies let a listing page be one plain range read of images instead of two
-- correlated aggregate subqueries per row.
ALTER TABLE images ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE images ADD COLUMN properties_json TEXT NOT NULL DEFAULT '{}';
UPDATE images SET
    tags_json = (SELECT json_group_array(value) FROM (SELECT t.value FROM image_tags t WHERE t.image_id = images.id ORDER BY t.value)),
    properties_json = (SELECT json_group_object(p.name, p.value) FROM image_properties p WHERE p.image_id = images.id)
WHERE deleted_at IS NULL;

-- Exact-match filters on hashes (Glance filters on any image column).
CREATE INDEX images_checksum ON images (checksum, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX images_os_hash_value ON images (os_hash_value, created_at, id) WHERE deleted_at IS NULL;
-- Few distinct algorithms, but an absent one must not walk the catalog.
CREATE INDEX images_os_hash_algo ON images (os_hash_algo, created_at, id) WHERE deleted_at IS NULL;


-- Planner statistics for a new database. Without any, SQLite's planner
-- weighs every "column = ?" alike and, e.g., for name=X&status=queued walked
-- all queued images (images_status) instead of the few named X
-- (images_name). These rows describe a typical catalog of 10,000 images
-- (SQLite documents hand-written sqlite_stat1 rows for exactly this);
-- ANALYZE or PRAGMA optimize replaces them with measured ones once the
-- catalog has grown. A database that has statistics keeps them.
ANALYZE sqlite_schema;
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT v.column1, v.column2, v.column3 FROM (VALUES
    ('images', 'sqlite_autoindex_images_1', '10000 1'),
    ('images', 'images_created_at', '10000 1 1'),
    ('images', 'images_name', '10000 3 1 1'),
    ('images', 'images_status', '10000 2500 1 1'),
    ('images', 'images_container_format', '10000 3000 1 1'),
    ('images', 'images_disk_format', '10000 2500 1 1'),
    ('images', 'images_size', '10000 2 1 1'),
    ('images', 'images_updated_at', '10000 1 1 1'),
    ('images', 'images_visibility', '10000 2500 1 1'),
    ('images', 'images_owner', '10000 50 1 1'),
    ('images', 'images_min_disk', '10000 1000 1 1'),
    ('images', 'images_min_ram', '10000 1000 1 1'),
    ('images', 'images_protected', '10000 5000 1 1'),
    ('images', 'images_os_hidden', '10000 5000 1 1'),
    ('images', 'images_virtual_size', '10000 2 1 1'),
    ('images', 'images_checksum', '10000 2 1 1'),
    ('images', 'images_os_hash_value', '10000 2 1 1'),
    ('images', 'images_os_hash_algo', '10000 5000 1 1'),
    ('image_tags', 'image_tags', '20000 2 1'),
    ('image_tags', 'image_tags_value', '20000 200 1'),
    ('image_properties', 'image_properties', '30000 3 1'),
    ('image_properties', 'image_properties_name_value', '30000 3000 30 1'),
    ('image_members', 'image_members', '2000 2 1'),
    ('image_members', 'image_members_member', '2000 20 5 1')
) v
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 s WHERE s.tbl = v.column1);
-- A database analysed before this migration lacks rows for the two new
-- indexes: assume hashes are unique.
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT 'images', n.idx, s.nrow || ' 1 1 1'
FROM (SELECT 'images_checksum' AS idx UNION ALL SELECT 'images_os_hash_value') n,
     (SELECT substr(stat, 1, instr(stat, ' ') - 1) AS nrow FROM sqlite_stat1 WHERE tbl = 'images' AND idx = 'images_created_at') s
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 x WHERE x.tbl = 'images' AND x.idx = n.idx);
-- Re-read the statistics on this connection.
ANALYZE sqlite_schema;
