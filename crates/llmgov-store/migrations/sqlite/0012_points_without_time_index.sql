-- Raw points are read by series and time, and pruned series by series through
-- metric_points_series_ts_idx: the time-only index cost every ingested point a third B-tree
-- insert for nothing else.
DROP INDEX IF EXISTS metric_points_ts_idx;
