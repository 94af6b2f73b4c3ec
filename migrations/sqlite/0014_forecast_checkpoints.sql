-- Issue 25: a job's forecast is recorded at a quarter, half and three
-- quarters done (checkpoint 0, 1, 2), so calibration compares like with like:
-- what the asset's past jobs teach at a quarter done is applied to forecasts
-- made near a quarter done. Rows recorded before this are checkpoint 0.
CREATE TABLE forecasts_by_checkpoint (
    tenant_id       TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    checkpoint      INTEGER NOT NULL DEFAULT 0,
    asset           TEXT NOT NULL,
    made_at_ms      INTEGER NOT NULL,
    progress        REAL NOT NULL,
    p50_ms          INTEGER NOT NULL,
    p90_ms          INTEGER NOT NULL,
    servo_eta_ms    INTEGER,
    completed_at_ms INTEGER,
    PRIMARY KEY (tenant_id, job_id, checkpoint)
);
INSERT INTO forecasts_by_checkpoint
    (tenant_id, job_id, checkpoint, asset, made_at_ms, progress, p50_ms, p90_ms, servo_eta_ms, completed_at_ms)
    SELECT tenant_id, job_id, 0, asset, made_at_ms, progress, p50_ms, p90_ms, servo_eta_ms, completed_at_ms
    FROM forecasts;
DROP TABLE forecasts;
ALTER TABLE forecasts_by_checkpoint RENAME TO forecasts;
CREATE INDEX forecasts_open ON forecasts (tenant_id, completed_at_ms);
