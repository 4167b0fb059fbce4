-- Lineage across datasets: a commit made from versions of other datasets (an import that
-- names its sources) lists them here, so that "what was made from this version" and
-- "what depends on this dataset" are index lookups. The source may be deleted later; the
-- edge stays and reports it as gone.
CREATE TABLE dataset_lineage (
    workspace_id      BLOB NOT NULL,
    dataset_id        BLOB NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    commit_id         TEXT NOT NULL,
    source_dataset_id BLOB NOT NULL,
    source_commit_id  TEXT NOT NULL,
    PRIMARY KEY (dataset_id, commit_id, source_dataset_id, source_commit_id)
);
CREATE INDEX dataset_lineage_source ON dataset_lineage (workspace_id, source_dataset_id, source_commit_id);
