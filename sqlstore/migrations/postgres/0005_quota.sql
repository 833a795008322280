-- Quota reservations. An upload in progress holds, with its lease, the bytes
-- it reserved against its project's size quota (the declared length, or what
-- a chunked upload has grown to), so that every process counts them in the
-- project's usage. NULL when the image holds no lease.
ALTER TABLE images ADD COLUMN lease_reserved BIGINT;

