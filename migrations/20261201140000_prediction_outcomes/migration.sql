-- The realised accuracy of served price predictions (bundle-only; additive, in schema
-- "bundle" so that Prisma sees no drift). The job `prediction-accuracy` settles each expired
-- prediction of "price_predictions" against the fares observed after it
-- ("bundle"."observed_fares") and records the outcome here, once per prediction; the
-- per-version aggregates it writes into "metrics" -> 'realised' of "bundle"."model_versions"
-- and "ml_models" are computed from these rows. See functions/admin/src/models/accuracy.rs.
CREATE TABLE IF NOT EXISTS "bundle"."prediction_outcomes" (
    -- "price_predictions"."id"; not a foreign key, so that the application can delete
    -- predictions without knowing of this table.
    "predictionId"     TEXT PRIMARY KEY,
    -- The prediction's "modelVersion" (of model "price") and "createdAt", copied so that the
    -- aggregates and a rescoring window read this table alone.
    "modelVersion"     TEXT NOT NULL,
    "predictedAt"      TIMESTAMP(3) NOT NULL,
    -- 'scored': a fare was observed within the price window; 'unmatched': none was.
    "status"           TEXT NOT NULL CHECK ("status" IN ('scored', 'unmatched')),
    "predictedPrice"   DOUBLE PRECISION NOT NULL,
    "low"              DOUBLE PRECISION NOT NULL,
    "high"             DOUBLE PRECISION NOT NULL,
    "recommendation"   TEXT,
    -- What `wait` is measured against: the asker's currentPrice, else the predicted price.
    "referencePrice"   DOUBLE PRECISION NOT NULL,
    -- The first fare observed in the price window, and when.
    "observedPrice"    DOUBLE PRECISION,
    "observedAt"       TIMESTAMP(3),
    -- |observed - predicted| / observed, and whether low <= observed <= high.
    "absoluteError"    DOUBLE PRECISION,
    "percentageError"  DOUBLE PRECISION,
    "withinRange"      BOOLEAN,
    -- The lowest fare observed after the prediction and before the end of the departure day.
    "lowestLaterPrice" DOUBLE PRECISION,
    -- For `wait` only: whether a later fare was below the reference (NULL: no later fare at
    -- all, so unknown), and by how much the lowest one was.
    "waitSaved"        BOOLEAN,
    "waitSaving"       DOUBLE PRECISION,
    "scoredAt"         TIMESTAMP(3) NOT NULL
);
-- The per-version aggregates.
CREATE INDEX IF NOT EXISTS "prediction_outcomes_modelVersion_idx"
    ON "bundle"."prediction_outcomes" ("modelVersion");
-- Rescoring a window of predictions (`--from/--to`).
CREATE INDEX IF NOT EXISTS "prediction_outcomes_predictedAt_idx"
    ON "bundle"."prediction_outcomes" ("predictedAt");

-- Every prediction created before "settledBefore" has its outcome (one row): a run reads
-- "price_predictions" from there on, by its index on "createdAt", instead of all of it.
CREATE TABLE IF NOT EXISTS "bundle"."prediction_accuracy_watermark" (
    "singleton"     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK ("singleton"),
    "settledBefore" TIMESTAMP(3) NOT NULL,
    "updatedAt"     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
