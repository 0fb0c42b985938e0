-- The analytics jobs' bookkeeping (bundle-only; additive, in schema "bundle" so that Prisma sees
-- no drift). The jobs are in functions/admin/src/analytics/rollup.rs (`admin rollup`) and
-- cohorts.rs (`admin cohorts`).

-- The scheduled rollup's progress (one row). "rolledUntil": the end of the UTC days it has
-- rolled up; a run recomputes from the earlier of this and yesterday, so a missed run is caught
-- up by the next ones. "errorsTalliedAt": when it last tallied the error groups (below).
CREATE TABLE IF NOT EXISTS "bundle"."rollup_watermark" (
    "singleton"       BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK ("singleton"),
    "rolledUntil"     TIMESTAMP(3),
    "errorsTalliedAt" TIMESTAMP(3),
    "updatedAt"       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The end of the event time the scheduled cohort run has read (one row).
CREATE TABLE IF NOT EXISTS "bundle"."cohort_watermark" (
    "singleton" BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK ("singleton"),
    "readUntil" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- "error_logs" keeps one row per error group with a running "count" and the time it was last
-- seen, not one row per occurrence, so the occurrences of an hour cannot be read back from it.
-- The rollup tallies each group: what of its "count" it has attributed to hours already, and
-- which resolution's regression it has counted. New occurrences (the difference) are
-- attributed to the hour the group was last seen when the rollup notices them.
CREATE TABLE IF NOT EXISTS "bundle"."error_tallies" (
    -- "error_logs"."id"; not a foreign key, so that the application can delete groups without
    -- knowing of this table.
    "errorLogId"   TEXT PRIMARY KEY,
    "counted"      INTEGER NOT NULL,
    -- The "resolvedAt" of the resolution whose regression was counted, if any.
    "regressionOf" TIMESTAMP(3),
    "updatedAt"    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Occurrences attributed per hour and group: what the "errors" metrics are rolled up from.
CREATE TABLE IF NOT EXISTS "bundle"."error_hours" (
    "hour"        TIMESTAMP(3) NOT NULL,
    "errorLogId"  TEXT NOT NULL,
    "occurrences" INTEGER NOT NULL,
    -- The group was first seen in this hour.
    "new"         BOOLEAN NOT NULL DEFAULT FALSE,
    -- The group was seen again in this hour after having been resolved.
    "regression"  BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY ("hour", "errorLogId")
);
