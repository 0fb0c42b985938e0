-- Tamper evidence for "audit_logs" (bundle-only; additive).
--
-- 1. Append-only: UPDATE, DELETE and TRUNCATE on "audit_logs" are refused by triggers.
-- 2. A hash chain over every row, however it was written (the Prisma application inserts here
--    too, so a trigger, not application code, maintains it): chain link n stores
--    hash_n = sha256(hash_{n-1} || canonical(row_n)). Recomputing the chain finds an altered row
--    (its hash differs), a removed row (its link points at nothing), a reordered or spliced-in
--    row (the next link's "prevHash" no longer matches) and a row written with triggers
--    disabled (it has no link).
--
-- The chain lives in its own schema so that Prisma, which introspects only its datasource's
-- schema, never reports it as drift.

CREATE SCHEMA "audit_trail";

CREATE TABLE "audit_trail"."chain" (
    "seq" BIGINT GENERATED ALWAYS AS IDENTITY,
    "auditId" TEXT NOT NULL,
    "prevHash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "chainedAt" TIMESTAMPTZ NOT NULL,
    -- Rows that existed before this migration, chained by it in timestamp order.
    "backfilled" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "chain_pkey" PRIMARY KEY ("seq"),
    CONSTRAINT "chain_auditId_key" UNIQUE ("auditId"),
    -- One successor per link: two writers that both read the same head cannot fork the chain.
    CONSTRAINT "chain_prevHash_key" UNIQUE ("prevHash")
);

-- The bytes a link's hash covers: every column of the row, by name, as jsonb text. jsonb's text
-- form is canonical (keys sorted, whitespace fixed) and renders timestamps in ISO 8601 whatever
-- the session's DateStyle or TimeZone. Taking the row as jsonb keeps the function independent of
-- the table's type, so the contract's own rollback can still drop "audit_logs".
CREATE FUNCTION "audit_trail"."canonical"("row" JSONB) RETURNS BYTEA
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT convert_to(jsonb_build_array(
        "row"->'id', "row"->'userId', "row"->'userEmail', "row"->'userRole', "row"->'action',
        "row"->'resource', "row"->'resourceId', "row"->'changes', "row"->'ipAddress',
        "row"->'userAgent', "row"->'requestId', "row"->'success', "row"->'errorMessage',
        "row"->'timestamp')::text, 'UTF8')
$$;

-- A link covers the previous hash, the row, and when and how it was chained (the time as Unix
-- microseconds, so the bytes do not depend on TimeZone): a row's timestamp can then be checked
-- against the moment it entered the chain, and that moment cannot be changed either.
CREATE FUNCTION "audit_trail"."link"("prev_hash" TEXT, "row" JSONB, "chained_at" TIMESTAMPTZ, "backfilled" BOOLEAN)
RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(sha256(
        decode("prev_hash", 'hex')
        || "audit_trail"."canonical"("row")
        || convert_to(format('|%s|%s', (extract(epoch FROM "chained_at") * 1000000)::bigint, "backfilled"), 'UTF8')
    ), 'hex')
$$;

CREATE FUNCTION "audit_trail"."append"() RETURNS TRIGGER
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    "head" TEXT;
    "now" TIMESTAMPTZ := clock_timestamp();
BEGIN
    -- Writers queue here from their audit insert to their commit, so links are appended in
    -- commit order and each reads the committed head (READ COMMITTED takes a new snapshot per
    -- statement). Writers should insert their audit row last, just before committing.
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_trail.chain', 0));
    SELECT "hash" INTO "head" FROM "audit_trail"."chain" ORDER BY "seq" DESC LIMIT 1;
    "head" := coalesce("head", repeat('0', 64));
    BEGIN
        INSERT INTO "audit_trail"."chain" ("auditId", "prevHash", "hash", "chainedAt")
        VALUES (NEW."id", "head", "audit_trail"."link"("head", to_jsonb(NEW), "now", false), "now");
    EXCEPTION WHEN unique_violation THEN
        -- Under REPEATABLE READ or SERIALIZABLE the transaction's snapshot can predate the
        -- committed head; appending after a stale head would fork the chain. Retryable.
        RAISE EXCEPTION 'the audit chain moved on since this transaction''s snapshot; retry the transaction'
            USING ERRCODE = 'serialization_failure',
                  HINT = 'audit rows are best written in READ COMMITTED transactions';
    END;
    RETURN NULL;
END
$$;

CREATE FUNCTION "audit_trail"."refuse_change"() RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: the audit trail is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Rows written before this migration are chained first, oldest first; inserts wait meanwhile.
LOCK TABLE "audit_logs" IN SHARE ROW EXCLUSIVE MODE;

DO $$
DECLARE
    "entry" RECORD;
    "head" TEXT := repeat('0', 64);
    "now" TIMESTAMPTZ := clock_timestamp();
BEGIN
    FOR "entry" IN SELECT a."id", to_jsonb(a) AS "row" FROM "audit_logs" a ORDER BY a."timestamp", a."id" LOOP
        INSERT INTO "audit_trail"."chain" ("auditId", "prevHash", "hash", "chainedAt", "backfilled")
        VALUES ("entry"."id", "head", "audit_trail"."link"("head", "entry"."row", "now", true), "now", true)
        RETURNING "hash" INTO "head";
    END LOOP;
END
$$;

CREATE TRIGGER "audit_logs_chain" AFTER INSERT ON "audit_logs"
    FOR EACH ROW EXECUTE FUNCTION "audit_trail"."append"();
CREATE TRIGGER "audit_logs_append_only" BEFORE UPDATE OR DELETE ON "audit_logs"
    FOR EACH ROW EXECUTE FUNCTION "audit_trail"."refuse_change"();
CREATE TRIGGER "audit_logs_no_truncate" BEFORE TRUNCATE ON "audit_logs"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_trail"."refuse_change"();
CREATE TRIGGER "chain_append_only" BEFORE UPDATE OR DELETE ON "audit_trail"."chain"
    FOR EACH ROW EXECUTE FUNCTION "audit_trail"."refuse_change"();
CREATE TRIGGER "chain_no_truncate" BEFORE TRUNCATE ON "audit_trail"."chain"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_trail"."refuse_change"();
