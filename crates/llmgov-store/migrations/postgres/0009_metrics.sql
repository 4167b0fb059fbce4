-- LLM metrics. A metric name is defined by its first point (type and unit); a series is a
-- metric with one combination of resource and tags. Raw points are partitioned by day
-- (partitions named metric_points_pYYYYMMDD are created on demand and dropped by
-- retention); times are microseconds since the Unix epoch. Rollups are hourly (resolution 1)
-- and daily (2) summaries: writers only add rows (compacted = false) and compaction merges
-- the rows of a bucket into one, so writers on several instances never wait for each other.

CREATE TABLE metric_definitions (
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    metric_type  TEXT NOT NULL,
    unit         TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE metric_series (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id  UUID NOT NULL,
    metric_name   TEXT NOT NULL,
    series_key    BYTEA NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    tags          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, series_key),
    FOREIGN KEY (workspace_id, metric_name) REFERENCES metric_definitions (workspace_id, name) ON DELETE CASCADE
);
CREATE INDEX metric_series_name_idx ON metric_series (workspace_id, metric_name);

CREATE TABLE metric_points (
    series_id BIGINT NOT NULL,
    ts        BIGINT NOT NULL,
    value     DOUBLE PRECISION NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX metric_points_series_ts_idx ON metric_points (series_id, ts);

CREATE TABLE metric_rollups (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_id   BIGINT NOT NULL REFERENCES metric_series(id) ON DELETE CASCADE,
    resolution  SMALLINT NOT NULL,
    bucket      BIGINT NOT NULL,
    value_count BIGINT NOT NULL,
    value_sum   DOUBLE PRECISION NOT NULL,
    value_min   DOUBLE PRECISION NOT NULL,
    value_max   DOUBLE PRECISION NOT NULL,
    value_m2    DOUBLE PRECISION NOT NULL,
    sketch      BYTEA NOT NULL,
    compacted   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX metric_rollups_series_idx ON metric_rollups (series_id, resolution, bucket);
CREATE INDEX metric_rollups_pending_idx ON metric_rollups (id) WHERE NOT compacted;
CREATE INDEX metric_rollups_age_idx ON metric_rollups (resolution, bucket);
