-- Issue 39: what each recorded forecast's job looked like when it was made,
-- so that a new asset's forecast can borrow from the tenant's assets most like
-- it (calibration and period-end factor weighted by likeness in size):
-- the job's partitions, the median work of its completed partitions (ms), and
-- what its own partitions said of its period-end partitions by then (the
-- factor, and how many period-end partitions told it). NULL on rows recorded
-- before this, which still calibrate their own asset.
ALTER TABLE forecasts ADD COLUMN total_partitions BIGINT;
ALTER TABLE forecasts ADD COLUMN partition_ms DOUBLE PRECISION;
ALTER TABLE forecasts ADD COLUMN period_end_factor DOUBLE PRECISION;
ALTER TABLE forecasts ADD COLUMN period_end_count BIGINT;
