-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "bootstrap" BOOLEAN NOT NULL DEFAULT false;

-- Keys registered from LORAPLANE_API_KEY before this column existed carried this name.
UPDATE "ApiKey" SET "bootstrap" = true WHERE "name" = 'bootstrap (LORAPLANE_API_KEY)';
