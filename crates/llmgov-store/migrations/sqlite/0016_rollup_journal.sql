-- Rollup deltas of ingest commits not yet merged into metric_rollups: one row per commit
-- (an append, where a row per series and bucket dirtied an index page each), moved into
-- metric_rollups about once a second by the metrics writer and read together with them by
-- queries. `deltas` is the binary form of llmgov_core::metrics::journal.
CREATE TABLE metric_rollup_journal (
    id     INTEGER PRIMARY KEY,
    deltas BLOB NOT NULL
);
