-- Audit trail at scale (bundle-only; additive; schema "audit_trail", out of Prisma's sight).
--
-- 1. Checkpoints of verified heads. Verifying the whole chain walks every link (about 21,000
--    links/s measured), which stops fitting in a Lambda's 30 s somewhere past 600,000 rows.
--    A verification now starts from the furthest intact checkpoint (whose hash it checks
--    against the link it names) and records a new one at the head it reached. Full re-verifications run
--    in slices, each resuming after the checkpoint of the slice before it. Checkpoints are
--    append-only, under the same triggers as the chain: rewriting one takes what rewriting
--    the chain takes.
-- 2. Refusal windows. Every refused admin request writes an audit row, so any signed-in site
--    user could grow the append-only trail at will. Identical refusals (same user, action,
--    resource, target and reason) within a window are counted on the window's row instead;
--    when the window closes, one summary row in the trail records how many there were.

CREATE TABLE "audit_trail"."checkpoints" (
    "id" BIGINT GENERATED ALWAYS AS IDENTITY,
    -- The link verified up to, and its hash when it was verified.
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    -- The sequence number this verification started after (0: from the genesis).
    "fromSeq" BIGINT NOT NULL,
    "links" BIGINT NOT NULL,
    -- A slice of a full re-verification (which names its pass), or an incremental one.
    "pass" TEXT,
    -- Whether the verification reached the head (for a pass: the pass is done).
    "complete" BOOLEAN NOT NULL,
    -- Whether what it walked was intact. A pass goes on past a problem (to find the others),
    -- and an incremental verification starts only from an intact checkpoint.
    "intact" BOOLEAN NOT NULL,
    "verifiedAt" TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT "checkpoints_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "checkpoints_pass_seq_idx" ON "audit_trail"."checkpoints" ("pass", "seq");
CREATE INDEX "checkpoints_intact_seq_idx" ON "audit_trail"."checkpoints" ("seq") WHERE "intact";

CREATE TRIGGER "checkpoints_append_only" BEFORE UPDATE OR DELETE ON "audit_trail"."checkpoints"
    FOR EACH ROW EXECUTE FUNCTION "audit_trail"."refuse_change"();
CREATE TRIGGER "checkpoints_no_truncate" BEFORE TRUNCATE ON "audit_trail"."checkpoints"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_trail"."refuse_change"();

CREATE TABLE "audit_trail"."refusal_windows" (
    -- SHA-256 of the refusal's user, action, resource, target and reason.
    "key" TEXT NOT NULL,
    "windowStart" TIMESTAMPTZ NOT NULL,
    -- The trail's row for the first refusal of the window.
    "firstAuditId" TEXT NOT NULL,
    -- Identical refusals counted since, not written to the trail.
    "repeats" INTEGER NOT NULL DEFAULT 0,
    "lastAt" TIMESTAMPTZ NOT NULL,
    CONSTRAINT "refusal_windows_pkey" PRIMARY KEY ("key")
);
-- Windows with uncounted repeats, for the scheduled flush.
CREATE INDEX "refusal_windows_repeats_idx" ON "audit_trail"."refusal_windows" ("windowStart") WHERE "repeats" > 0;
