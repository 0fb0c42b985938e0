-- Baseline: the Phase 8+9 contract assumes the application's existing "users" table (TEXT "id" primary key).
-- This only creates a minimal NextAuth/Prisma-style one on databases without the app (local dev, tests).
-- Guarded as a whole: where "users" already exists nothing here runs, so that table is never altered or indexed.

DO $$
BEGIN
    IF to_regclass('"users"') IS NULL THEN
        -- CreateTable
        CREATE TABLE IF NOT EXISTS "users" (
            "id" TEXT NOT NULL,
            "name" TEXT,
            "email" TEXT,
            "emailVerified" TIMESTAMP(3),
            "image" TEXT,
            "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
            "updatedAt" TIMESTAMP(3) NOT NULL,

            CONSTRAINT "users_pkey" PRIMARY KEY ("id")
        );

        -- CreateIndex
        CREATE UNIQUE INDEX IF NOT EXISTS "users_email_key" ON "users"("email");
    END IF;
END
$$;
