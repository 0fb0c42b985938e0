-- Flight searches per destination (bundle-only; additive, in schema "bundle" so that Prisma
-- sees no drift). The popularity job (`cms popularity`) also counts, per hour, the
-- "flight_search" events whose destination is a destination's airport, and adds the
-- difference from what it recorded here to "destinations"."searches": a rerun, a backfill or
-- late events count once, as for suggestions (20261201100000_search_popularity).
CREATE TABLE IF NOT EXISTS "bundle"."destination_search_hours" (
    -- The hour of the events counted, UTC, truncated.
    "hour"          TIMESTAMP(3) NOT NULL,
    -- "destinations"."id"; not a foreign key, so that the application can delete
    -- destinations without knowing of this table.
    "destinationId" TEXT NOT NULL,
    "searches"      INTEGER NOT NULL,
    PRIMARY KEY ("hour", "destinationId")
);
