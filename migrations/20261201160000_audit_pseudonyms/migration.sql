-- Pseudonymisable audit rows (bundle-only; additive; schema "audit_trail", out of Prisma's sight).
--
-- A person's identifiers must be replaceable in "audit_logs" (an erasure request) without
-- breaking the hash chain, whose links used to cover every column as written. From this
-- migration on, a link covers each identifying column ("userId", "userEmail", "resourceId",
-- "changes", "ipAddress", "userAgent", "errorMessage") as sha256(salt || value), with a
-- random salt per row and column kept in "audit_trail"."salts"; the other columns are
-- covered as before. Verification recomputes those digests from the columns, so an altered
-- column is still found.
--
-- The one procedure allowed to change a row, "audit_trail"."pseudonymise", replaces a column
-- by a pseudonym and records, in "audit_trail"."pseudonymisations", the digest the link
-- covers and the sha256 of the value put in its place; it then erases that column's salt (a
-- digest of an address or an email with its salt at hand could be brute-forced back). A
-- verification takes the recorded digest for a column only while the column still holds
-- exactly the value recorded. The records are append-only and chained among themselves.
--
-- Rows chained before this migration (no salts) keep links over their raw columns: the
-- procedure refuses them, since re-linking them would rewrite every later link.

CREATE TABLE "audit_trail"."salts" (
    "auditId" TEXT NOT NULL,
    "userId" BYTEA,
    "userEmail" BYTEA,
    "resourceId" BYTEA,
    "changes" BYTEA,
    "ipAddress" BYTEA,
    "userAgent" BYTEA,
    "errorMessage" BYTEA,
    CONSTRAINT "salts_pkey" PRIMARY KEY ("auditId")
);

CREATE TABLE "audit_trail"."pseudonymisations" (
    "seq" BIGINT GENERATED ALWAYS AS IDENTITY,
    "auditId" TEXT NOT NULL,
    "column" TEXT NOT NULL,
    -- What the row's link covers for the column: the digest of its original value.
    "originalDigest" TEXT NOT NULL,
    -- sha256 of the value put in its place (as jsonb text).
    "pseudonymisedDigest" TEXT NOT NULL,
    -- One run of the procedure (an erasure); its audit row names it.
    "procedure" TEXT NOT NULL,
    "pseudonymisedAt" TIMESTAMPTZ NOT NULL,
    "prevHash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    CONSTRAINT "pseudonymisations_pkey" PRIMARY KEY ("seq"),
    CONSTRAINT "pseudonymisations_prevHash_key" UNIQUE ("prevHash")
);
CREATE INDEX "pseudonymisations_auditId_idx" ON "audit_trail"."pseudonymisations" ("auditId", "seq");

-- Sixteen bytes from the server's cryptographic random source (122 random bits).
CREATE FUNCTION "audit_trail"."new_salt"() RETURNS BYTEA
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT uuid_send(gen_random_uuid()) $$;

-- The functions a verification calls for every link have no SET clause: SQL ones are then
-- inlined, and PL/pgSQL ones (those taking the row more than once, which the planner does not
-- inline) evaluate their expression on plpgsql's fast path; run by the SQL function executor
-- one call at a time they cost twenty times the walk over raw links. Their operators are
-- pg_catalog's, always searched first.

-- A column's digest: null stays null (it identifies no one); a value without its salt (erased
-- outside the procedure) gets a marker no digest equals, so its link no longer verifies.
CREATE FUNCTION "audit_trail"."digest"("salt" BYTEA, "value" JSONB) RETURNS JSONB
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN "value" IS NULL OR "value" = 'null'::jsonb THEN 'null'::jsonb
        WHEN "salt" IS NULL THEN to_jsonb('unsalted'::text)
        ELSE to_jsonb(encode(pg_catalog.sha256("salt" || convert_to("value"::text, 'UTF8')), 'hex'))
    END
$$;

-- sha256 of a value as the records name it.
CREATE FUNCTION "audit_trail"."value_digest"("value" JSONB) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT encode(pg_catalog.sha256(convert_to(coalesce("value", 'null'::jsonb)::text, 'UTF8')), 'hex') $$;

CREATE FUNCTION "audit_trail"."identifying_columns"() RETURNS TEXT[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['userId', 'userEmail', 'resourceId', 'changes', 'ipAddress', 'userAgent', 'errorMessage'] $$;

-- What a link covers for one identifying column: the recorded digest while the column holds
-- the value the latest record of its pseudonymisation put there ("record": {"digest",
-- "now"}), else the digest of what it holds.
CREATE FUNCTION "audit_trail"."column_cover"("salt" BYTEA, "value" JSONB, "record" JSONB) RETURNS JSONB
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN "record" IS NOT NULL AND "record"->>'now' = "audit_trail"."value_digest"("value") THEN "record"->'digest'
        ELSE "audit_trail"."digest"("salt", "value")
    END
$$;

-- The row as its link covers it: each identifying column replaced by its digest. "records"
-- maps a pseudonymised column to its latest record (see "records_of").
CREATE FUNCTION "audit_trail"."covered"("row" JSONB, "s" "audit_trail"."salts", "records" JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN "row" || jsonb_build_object(
        'userId', "audit_trail"."column_cover"(("s")."userId", "row"->'userId', "records"->'userId'),
        'userEmail', "audit_trail"."column_cover"(("s")."userEmail", "row"->'userEmail', "records"->'userEmail'),
        'resourceId', "audit_trail"."column_cover"(("s")."resourceId", "row"->'resourceId', "records"->'resourceId'),
        'changes', "audit_trail"."column_cover"(("s")."changes", "row"->'changes', "records"->'changes'),
        'ipAddress', "audit_trail"."column_cover"(("s")."ipAddress", "row"->'ipAddress', "records"->'ipAddress'),
        'userAgent', "audit_trail"."column_cover"(("s")."userAgent", "row"->'userAgent', "records"->'userAgent'),
        'errorMessage', "audit_trail"."column_cover"(("s")."errorMessage", "row"->'errorMessage', "records"->'errorMessage'));
END
$$;

-- A link over a covered row; the suffix tells it from a link over raw columns, so a row's raw
-- values cannot be swapped for their digests with the salts removed.
CREATE FUNCTION "audit_trail"."link_digested"("prev_hash" TEXT, "covered" JSONB, "chained_at" TIMESTAMPTZ, "backfilled" BOOLEAN)
RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT encode(pg_catalog.sha256(
        decode("prev_hash", 'hex')
        || "audit_trail"."canonical"("covered")
        || convert_to(format('|%s|%s|digested', (extract(epoch FROM "chained_at") * 1000000)::bigint, "backfilled"), 'UTF8')
    ), 'hex')
$$;

-- What a link's hash should be: over raw columns for a row without salts (chained before this
-- migration), over the covered row otherwise.
CREATE FUNCTION "audit_trail"."expected_link"("prev_hash" TEXT, "row" JSONB, "s" "audit_trail"."salts", "records" JSONB,
    "chained_at" TIMESTAMPTZ, "backfilled" BOOLEAN)
RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN CASE
        WHEN "row" IS NULL THEN NULL
        WHEN ("s")."auditId" IS NULL THEN "audit_trail"."link"("prev_hash", "row", "chained_at", "backfilled")
        ELSE "audit_trail"."link_digested"("prev_hash", "audit_trail"."covered"("row", "s", "records"), "chained_at", "backfilled")
    END;
END
$$;

-- The latest record of each pseudonymised column of a row, as "covered" takes them.
CREATE FUNCTION "audit_trail"."records_of"("audit_id" TEXT) RETURNS JSONB
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(p."column", jsonb_build_object('digest', p."originalDigest", 'now', p."pseudonymisedDigest") ORDER BY p."seq")
    FROM "audit_trail"."pseudonymisations" p WHERE p."auditId" = "audit_id"
$$;

CREATE FUNCTION "audit_trail"."record_hash"("prev_hash" TEXT, "audit_id" TEXT, "column" TEXT, "original_digest" TEXT,
    "pseudonymised_digest" TEXT, "procedure" TEXT, "at" TIMESTAMPTZ)
RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(sha256(decode("prev_hash", 'hex') || convert_to(jsonb_build_array(
        "audit_id", "column", "original_digest", "pseudonymised_digest", "procedure",
        (extract(epoch FROM "at") * 1000000)::bigint)::text, 'UTF8')), 'hex')
$$;

-- Every row written from now on gets its salts and a link over its covered form.
CREATE OR REPLACE FUNCTION "audit_trail"."append"() RETURNS TRIGGER
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    "head" TEXT;
    "now" TIMESTAMPTZ := clock_timestamp();
    "salts" "audit_trail"."salts";
BEGIN
    -- Writers queue here from their audit insert to their commit, so links are appended in
    -- commit order and each reads the committed head (READ COMMITTED takes a new snapshot per
    -- statement). Writers should insert their audit row last, just before committing.
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_trail.chain', 0));
    SELECT "hash" INTO "head" FROM "audit_trail"."chain" ORDER BY "seq" DESC LIMIT 1;
    "head" := coalesce("head", repeat('0', 64));
    INSERT INTO "audit_trail"."salts" AS s ("auditId", "userId", "userEmail", "resourceId", "changes", "ipAddress", "userAgent", "errorMessage")
    VALUES (NEW."id", "audit_trail"."new_salt"(), "audit_trail"."new_salt"(), "audit_trail"."new_salt"(), "audit_trail"."new_salt"(),
            "audit_trail"."new_salt"(), "audit_trail"."new_salt"(), "audit_trail"."new_salt"())
    RETURNING s.* INTO "salts";
    BEGIN
        INSERT INTO "audit_trail"."chain" ("auditId", "prevHash", "hash", "chainedAt")
        VALUES (NEW."id", "head",
                "audit_trail"."link_digested"("head", "audit_trail"."covered"(to_jsonb(NEW), "salts", NULL), "now", false),
                "now");
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

-- Still append-only, but for the procedure below: while it runs (the transaction-local
-- setting it sets and resets), an UPDATE of "audit_logs" may change identifying columns only,
-- and one of "audit_trail"."salts" may only erase salts. A session can set the setting
-- itself: the guard stops mistakes, and verification what gets past it (a change without its
-- record no longer matches the link).
CREATE OR REPLACE FUNCTION "audit_trail"."refuse_change"() RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
DECLARE
    "name" TEXT;
BEGIN
    IF TG_OP = 'UPDATE' AND TG_LEVEL = 'ROW'
       AND current_setting('audit_trail.pseudonymising', true) = 'on' THEN
        IF TG_TABLE_NAME = 'audit_logs' AND TG_TABLE_SCHEMA <> 'audit_trail'
           AND to_jsonb(NEW) - "audit_trail"."identifying_columns"() = to_jsonb(OLD) - "audit_trail"."identifying_columns"() THEN
            RETURN NEW;
        END IF;
        -- Nested: NEW has an "auditId" only on salts, and plpgsql does not short-circuit.
        IF TG_TABLE_SCHEMA = 'audit_trail' AND TG_TABLE_NAME = 'salts' THEN
            IF to_jsonb(NEW)->'auditId' <> to_jsonb(OLD)->'auditId' THEN
                RAISE EXCEPTION 'the auditId of audit_trail.salts cannot change'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            FOREACH "name" IN ARRAY "audit_trail"."identifying_columns"() LOOP
                IF to_jsonb(NEW)->"name" <> 'null'::jsonb AND to_jsonb(NEW)->"name" <> to_jsonb(OLD)->"name" THEN
                    RAISE EXCEPTION 'only the erasure of a salt is allowed on audit_trail.salts'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
            END LOOP;
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% on %.% is not allowed: the audit trail is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The procedure: replaces identifying columns of one audit row ("replacement": column ->
-- new value) and records each change. Refuses a row chained before this migration, and a
-- row that no longer matches its link (pseudonymising it would hide the alteration).
-- Returns how many columns changed.
CREATE FUNCTION "audit_trail"."pseudonymise"("audit_id" TEXT, "replacement" JSONB, "procedure" TEXT) RETURNS INTEGER
LANGUAGE plpgsql
AS $$
DECLARE
    "current" JSONB;
    "salts" "audit_trail"."salts";
    "link" RECORD;
    "name" TEXT;
    "value" JSONB;
    "original" TEXT;
    "recorded" TEXT;
    "head" TEXT;
    "at" TIMESTAMPTZ := clock_timestamp();
    "changed" INTEGER := 0;
BEGIN
    SELECT to_jsonb(a) INTO "current" FROM "audit_logs" a WHERE a."id" = "audit_id" FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no audit row %', "audit_id" USING ERRCODE = 'no_data_found';
    END IF;
    SELECT s.* INTO "salts" FROM "audit_trail"."salts" s WHERE s."auditId" = "audit_id" FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit row % was chained over its raw columns (before 20261201160000_audit_pseudonyms): it cannot be pseudonymised without breaking the chain', "audit_id"
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- One procedure at a time appends to the records' chain.
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_trail.pseudonymisations', 0));
    SELECT c."hash", c."prevHash", c."chainedAt", c."backfilled" INTO "link" FROM "audit_trail"."chain" c WHERE c."auditId" = "audit_id";
    IF NOT FOUND OR "link"."hash" IS DISTINCT FROM "audit_trail"."expected_link"("link"."prevHash", "current", "salts",
            "audit_trail"."records_of"("audit_id"), "link"."chainedAt", "link"."backfilled") THEN
        RAISE EXCEPTION 'audit row % no longer matches its link: it was altered, and pseudonymising it would hide that', "audit_id"
            USING ERRCODE = 'data_corrupted';
    END IF;
    PERFORM set_config('audit_trail.pseudonymising', 'on', true);
    FOR "name", "value" IN SELECT e."key", e."value" FROM jsonb_each("replacement") e LOOP
        IF NOT "name" = ANY ("audit_trail"."identifying_columns"()) THEN
            RAISE EXCEPTION '% is not an identifying column of audit_logs', "name" USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF "value" = 'null'::jsonb OR ("name" <> 'changes' AND jsonb_typeof("value") <> 'string') THEN
            RAISE EXCEPTION 'a pseudonym for % must be a %', "name", CASE WHEN "name" = 'changes' THEN 'JSON value' ELSE 'string' END
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN "current"->"name" = "value";
        -- A column pseudonymised before keeps the digest its link covers.
        SELECT p."originalDigest" INTO "recorded" FROM "audit_trail"."pseudonymisations" p
        WHERE p."auditId" = "audit_id" AND p."column" = "name" ORDER BY p."seq" DESC LIMIT 1;
        "original" := coalesce("recorded",
            "audit_trail"."digest"(decode(substr(to_jsonb("salts")->>"name", 3), 'hex'), "current"->"name") #>> '{}');
        SELECT p."hash" INTO "head" FROM "audit_trail"."pseudonymisations" p ORDER BY p."seq" DESC LIMIT 1;
        "head" := coalesce("head", repeat('0', 64));
        INSERT INTO "audit_trail"."pseudonymisations" ("auditId", "column", "originalDigest", "pseudonymisedDigest",
            "procedure", "pseudonymisedAt", "prevHash", "hash")
        VALUES ("audit_id", "name", "original", "audit_trail"."value_digest"("value"), "procedure", "at", "head",
            "audit_trail"."record_hash"("head", "audit_id", "name", "original", "audit_trail"."value_digest"("value"), "procedure", "at"));
        IF "name" = 'changes' THEN
            UPDATE "audit_logs" SET "changes" = "value" WHERE "id" = "audit_id";
        ELSE
            EXECUTE format('UPDATE "audit_logs" SET %I = $1 WHERE "id" = $2', "name") USING "value" #>> '{}', "audit_id";
        END IF;
        EXECUTE format('UPDATE "audit_trail"."salts" SET %I = NULL WHERE "auditId" = $1', "name") USING "audit_id";
        "changed" := "changed" + 1;
    END LOOP;
    PERFORM set_config('audit_trail.pseudonymising', 'off', true);
    RETURN "changed";
END
$$;

CREATE TRIGGER "salts_append_only" BEFORE UPDATE OR DELETE ON "audit_trail"."salts"
    FOR EACH ROW EXECUTE FUNCTION "audit_trail"."refuse_change"();
CREATE TRIGGER "salts_no_truncate" BEFORE TRUNCATE ON "audit_trail"."salts"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_trail"."refuse_change"();
CREATE TRIGGER "pseudonymisations_append_only" BEFORE UPDATE OR DELETE ON "audit_trail"."pseudonymisations"
    FOR EACH ROW EXECUTE FUNCTION "audit_trail"."refuse_change"();
CREATE TRIGGER "pseudonymisations_no_truncate" BEFORE TRUNCATE ON "audit_trail"."pseudonymisations"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_trail"."refuse_change"();
