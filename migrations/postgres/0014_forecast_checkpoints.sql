-- Issue 25: a job's forecast is recorded at a quarter, half and three
-- quarters done (checkpoint 0, 1, 2), so calibration compares like with like:
-- what the asset's past jobs teach at a quarter done is applied to forecasts
-- made near a quarter done. Rows recorded before this are checkpoint 0.
ALTER TABLE forecasts ADD COLUMN checkpoint INTEGER NOT NULL DEFAULT 0;
ALTER TABLE forecasts DROP CONSTRAINT forecasts_pkey;
ALTER TABLE forecasts ADD PRIMARY KEY (tenant_id, job_id, checkpoint);
