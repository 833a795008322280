-- Node agents: registrations, inventories and the digests of agent tokens.
-- Timestamps are unix microseconds; intervals are milliseconds. The
-- inventory is one row per (agent, reference, architecture), indexed by
-- image so that "which agents hold this image" is one index range.

CREATE TABLE agent_tokens (
    agent_id   TEXT NOT NULL PRIMARY KEY,
    sha256     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE agents (
    id                 TEXT NOT NULL PRIMARY KEY,
    addr               TEXT NOT NULL,
    runtime            TEXT NOT NULL,
    version            TEXT NOT NULL,
    heartbeat_ms       BIGINT NOT NULL,
    registered_at      BIGINT NOT NULL,
    last_heartbeat     BIGINT NOT NULL
);

CREATE TABLE agent_images (
    agent_id     TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    reference    TEXT NOT NULL,
    architecture TEXT NOT NULL,
    digest       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    PRIMARY KEY (agent_id, reference, architecture)
);

CREATE INDEX agent_images_image ON agent_images (reference, architecture, agent_id);
