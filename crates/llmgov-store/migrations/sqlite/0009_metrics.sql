-- LLM metrics. A metric name is defined by its first point (type and unit); a series is a
-- metric with one combination of resource and tags. Times of points and rollups are
-- microseconds since the Unix epoch; retention deletes raw points by time range (SQLite has
-- no partitions). Rollups are hourly (resolution 1) and daily (2) summaries: writers only
-- add rows (compacted = 0) and compaction merges the rows of a bucket into one.

CREATE TABLE metric_definitions (
    workspace_id BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    metric_type  TEXT NOT NULL,
    unit         TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE metric_series (
    id            INTEGER PRIMARY KEY,
    workspace_id  BLOB NOT NULL,
    metric_name   TEXT NOT NULL,
    series_key    BLOB NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    tags          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (workspace_id, series_key),
    FOREIGN KEY (workspace_id, metric_name) REFERENCES metric_definitions (workspace_id, name) ON DELETE CASCADE
);
CREATE INDEX metric_series_name_idx ON metric_series (workspace_id, metric_name);

CREATE TABLE metric_points (
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value     REAL NOT NULL
);
CREATE INDEX metric_points_series_ts_idx ON metric_points (series_id, ts);
CREATE INDEX metric_points_ts_idx ON metric_points (ts);

CREATE TABLE metric_rollups (
    id          INTEGER PRIMARY KEY,
    series_id   INTEGER NOT NULL REFERENCES metric_series(id) ON DELETE CASCADE,
    resolution  INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    value_count INTEGER NOT NULL,
    value_sum   REAL NOT NULL,
    value_min   REAL NOT NULL,
    value_max   REAL NOT NULL,
    value_m2    REAL NOT NULL,
    sketch      BLOB NOT NULL,
    compacted   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX metric_rollups_series_idx ON metric_rollups (series_id, resolution, bucket);
CREATE INDEX metric_rollups_pending_idx ON metric_rollups (id) WHERE NOT compacted;
CREATE INDEX metric_rollups_age_idx ON metric_rollups (resolution, bucket);
