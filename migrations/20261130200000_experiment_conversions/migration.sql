-- Conversions reported with a client-chosen "conversionId" (bundle-only; additive, in schema
-- "bundle" so that Prisma sees no drift). A client retries a conversion it got no answer for;
-- the retry must neither add its value twice nor count twice. One row per flag and
-- conversion id, written in the same transaction as the participation it updated.
CREATE TABLE IF NOT EXISTS "bundle"."experiment_conversions" (
    "flagId"          TEXT NOT NULL,
    "conversionId"    TEXT NOT NULL,
    -- "experiment_participations"."id"; not a foreign key, so that the application can
    -- delete participations without knowing of this table.
    "participationId" TEXT NOT NULL,
    "value"           DOUBLE PRECISION,
    "receivedAt"      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY ("flagId", "conversionId")
);
