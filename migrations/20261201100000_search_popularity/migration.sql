-- Search popularity from flight searches (bundle-only; additive, in schema "bundle" so that
-- Prisma sees no drift). The job `cms popularity` credits each suggestion with the
-- "flight_search" events naming its code, per hour of the events' time. It records what it
-- credited per hour and suggestion, so that counting an hour again (a rerun, a backfill, late
-- events) adds only the difference to "search_suggestions"."popularity": see
-- functions/cms/src/suggest/popularity.rs.
CREATE TABLE IF NOT EXISTS "bundle"."search_popularity_hours" (
    -- The hour of the events counted, UTC, truncated.
    "hour"         TIMESTAMP(3) NOT NULL,
    -- "search_suggestions"."id"; not a foreign key, so that the application can delete
    -- suggestions without knowing of this table.
    "suggestionId" TEXT NOT NULL,
    "searches"     INTEGER NOT NULL,
    PRIMARY KEY ("hour", "suggestionId")
);

-- The end of the hours the scheduled run has counted (one row).
CREATE TABLE IF NOT EXISTS "bundle"."search_popularity_watermark" (
    "singleton"    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK ("singleton"),
    "countedUntil" TIMESTAMP(3) NOT NULL,
    "updatedAt"    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
