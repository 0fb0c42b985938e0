-- Price models: every trained version, the fares they learn from and where the fare sync
-- stopped (bundle-only; additive, in schema "bundle" so that Prisma sees no drift).
-- "ml_models" (contract, one row per name) keeps the ACTIVE version of each model, which
-- serving reads; this migration keeps everything the registry needs besides it. See
-- functions/admin/src/models/.

-- Every version of every model, active or not.
CREATE TABLE IF NOT EXISTS "bundle"."model_versions" (
    "id"           TEXT PRIMARY KEY,
    "name"         TEXT NOT NULL,
    -- e.g. "2026-12-01T0300Z": when it was trained, unique per name.
    "version"      TEXT NOT NULL,
    "modelType"    TEXT NOT NULL,
    "features"     TEXT[] NOT NULL,
    -- The fitted model as data (serde of `pricing::Model`): inspectable numbers.
    "parameters"   JSONB NOT NULL,
    -- Holdout metrics of training; the accuracy job adds "realised".
    "metrics"      JSONB NOT NULL,
    -- What it was trained on: rows, from, to, routes, holdoutFrom.
    "trainingData" JSONB NOT NULL,
    "trainedAt"    TIMESTAMP(3) NOT NULL,
    "createdAt"    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- The last time it became active (by activation or rollback).
    "activatedAt"  TIMESTAMP(3),
    "active"       BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT "model_versions_name_version_key" UNIQUE ("name", "version")
);
-- At most one active version per name, whatever a writer does.
CREATE UNIQUE INDEX IF NOT EXISTS "model_versions_one_active_idx"
    ON "bundle"."model_versions" ("name") WHERE "active";

-- The activations of each name, newest last: a rollback goes back to the one before the
-- current one and marks the current one rolled back, so that a second rollback goes further
-- back instead of returning.
CREATE TABLE IF NOT EXISTS "bundle"."model_activations" (
    "id"           BIGSERIAL PRIMARY KEY,
    "name"         TEXT NOT NULL,
    "version"      TEXT NOT NULL,
    "activatedAt"  TIMESTAMP(3) NOT NULL,
    "rolledBackAt" TIMESTAMP(3)
);
CREATE INDEX IF NOT EXISTS "model_activations_name_id_idx"
    ON "bundle"."model_activations" ("name", "id");

-- Fares seen by visitors (results_view / fare_observed events), imported from CSV or loaded
-- as a sample: what training and the accuracy job learn from.
CREATE TABLE IF NOT EXISTS "bundle"."observed_fares" (
    "id"          TEXT PRIMARY KEY,
    "origin"      TEXT NOT NULL,
    "destination" TEXT NOT NULL,
    "departDate"  DATE NOT NULL,
    "returnDate"  DATE,
    "price"       DOUBLE PRECISION NOT NULL CHECK ("price" > 0),
    "currency"    TEXT NOT NULL,
    "observedAt"  TIMESTAMP(3) NOT NULL,
    "source"      TEXT NOT NULL CHECK ("source" IN ('event', 'import', 'sample')),
    -- The "analytics_events"."id" it came from, so that a sync run twice inserts once.
    "eventId"     TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS "observed_fares_origin_destination_departDate_observedAt_idx"
    ON "bundle"."observed_fares" ("origin", "destination", "departDate", "observedAt");
-- Training reads a bounded window of the newest fares.
CREATE INDEX IF NOT EXISTS "observed_fares_observedAt_idx"
    ON "bundle"."observed_fares" ("observedAt");

-- Where the fare sync stopped (one row): the events' "timestamp" it has read up to.
CREATE TABLE IF NOT EXISTS "bundle"."fare_sync_watermark" (
    "singleton"   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK ("singleton"),
    "syncedUntil" TIMESTAMP(3) NOT NULL,
    "updatedAt"   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
