-- The overview's narrow copy of the snapshots' series (bundle-only; additive, in schema
-- "bundle" so that Prisma sees no drift). The admin overview reads ("metricName",
-- "timestamp", "value") of 90 days of hourly snapshots and the 90 before, about 60,000 rows.
-- From "metric_snapshots" every one of them is a heap fetch of a row carrying a few KB of
-- "dimensions" (53 ms for the SELECT alone, bench/overview.sh); an index with "value" on the
-- contract's table would be drift for Prisma (`migrate dev` would drop it) and a change to the
-- application's schema. The rollup writes this table in the same transaction as the snapshot
-- rows it copies (functions/admin/src/analytics/rollup.rs), so the two never disagree; the
-- primary key holds the value, so the overview's read is an index-only scan.
CREATE TABLE IF NOT EXISTS "bundle"."metric_series" (
    "metricName"  TEXT NOT NULL,
    "granularity" TEXT NOT NULL,
    "timestamp"   TIMESTAMP(3) NOT NULL,
    "value"       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY ("metricName", "granularity", "timestamp") INCLUDE ("value")
);

-- Snapshots rolled up before this migration.
INSERT INTO "bundle"."metric_series" ("metricName", "granularity", "timestamp", "value")
SELECT "metricName", "granularity", "timestamp", "value" FROM "metric_snapshots"
ON CONFLICT DO NOTHING;
