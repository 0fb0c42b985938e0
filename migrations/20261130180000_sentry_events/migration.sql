-- Events received from Sentry SDKs (bundle-only; additive, in schema "bundle" so that Prisma
-- sees no drift). One row per event id: an SDK retries an event it got no answer for, and the
-- retry must not count the error twice. Also what "error_logs" has no column for: the
-- project, the release and the environment the event was sent from.
CREATE TABLE IF NOT EXISTS "bundle"."sentry_events" (
    "eventId"     UUID PRIMARY KEY,
    "projectId"   BIGINT NOT NULL,
    -- The group ("error_logs"."id") the event was counted in. Not a foreign key: the
    -- application deletes error groups without knowing of this table.
    "errorLogId"  TEXT NOT NULL,
    "release"     TEXT,
    "environment" TEXT,
    "receivedAt"  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX IF NOT EXISTS "sentry_events_errorLogId_idx" ON "bundle"."sentry_events" ("errorLogId");
CREATE INDEX IF NOT EXISTS "sentry_events_receivedAt_idx" ON "bundle"."sentry_events" ("receivedAt");
