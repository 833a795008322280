-- Tasks of interoperable image import (Glance's tasks table). Input and
-- result are JSON objects kept as text; timestamps are unix microseconds.
-- expires_at is set when a task ends (Glance's task_time_to_live).
CREATE TABLE tasks (
    id          TEXT NOT NULL PRIMARY KEY,
    type        TEXT NOT NULL,
    status      TEXT NOT NULL,
    owner       TEXT,
    image_id    TEXT,
    request_id  TEXT,
    user_id     TEXT,
    input_json  TEXT,
    result_json TEXT,
    message     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    expires_at  BIGINT
);

-- GET /v2/images/{id}/tasks lists one image's tasks, newest first.
CREATE INDEX tasks_image ON tasks (image_id, created_at, id);
-- GET /v2/tasks pages by created_at (the default sort) with id as tie-breaker.
CREATE INDEX tasks_created_at ON tasks (created_at, id);
