-- The forecast made for each job once it was a quarter done, kept until the
-- job completes: finished rows are what calibration learns each asset's bias
-- from and what the forecast's accuracy is reported on.
CREATE TABLE forecasts (
    tenant_id       TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    asset           TEXT NOT NULL,
    made_at_ms      INTEGER NOT NULL,
    progress        REAL NOT NULL,      -- done / total when the forecast was made
    p50_ms          INTEGER NOT NULL,       -- the raw (uncalibrated) P50
    p90_ms          INTEGER NOT NULL,
    servo_eta_ms    INTEGER,                -- Servo's own ETA at the same moment
    completed_at_ms INTEGER,                -- set when the job completed
    PRIMARY KEY (tenant_id, job_id)
);
CREATE INDEX forecasts_open ON forecasts (tenant_id, completed_at_ms);
