-- Every object the bundle owns lives in a schema of its own (bundle-only; additive).
--
-- Prisma introspects only its datasource's schema ("public"), and `prisma migrate dev` reports
-- any table there that its schema does not declare as drift, and offers to reset the database.
-- The audit chain was created in "audit_trail" for this reason; the bundle's migration ledger
-- was created in the datasource's schema by earlier versions as "_bundle_migrations". It moves
-- to "bundle"."migrations" here, with its rows (this migration's own row included: the migrator
-- finds the ledger again after running this file). A database migrated by this version from
-- the start has the ledger there already, and nothing here changes it. Later bundle objects
-- (watermarks of scheduled jobs, caches, search indexes) go in "bundle" too.

CREATE SCHEMA IF NOT EXISTS "bundle";

DO $$
BEGIN
    IF to_regclass('"_bundle_migrations"') IS NULL THEN
        RETURN;
    END IF;
    IF to_regclass('"bundle"."migrations"') IS NULL THEN
        ALTER TABLE "_bundle_migrations" SET SCHEMA "bundle";
        ALTER TABLE "bundle"."_bundle_migrations" RENAME TO "migrations";
        ALTER TABLE "bundle"."migrations" RENAME CONSTRAINT "_bundle_migrations_pkey" TO "migrations_pkey";
    ELSE
        INSERT INTO "bundle"."migrations" SELECT * FROM "_bundle_migrations" ON CONFLICT ("id") DO NOTHING;
        DROP TABLE "_bundle_migrations";
    END IF;
END
$$;
