-- AlterTable
ALTER TABLE "Upload" ADD COLUMN     "leaseId" TEXT,
ADD COLUMN     "leaseUntil" TIMESTAMP(3);

-- A complete that was running at the upgrade holds a lease that has already lapsed: a retry or the sweep takes over.
UPDATE "Upload" SET "leaseId" = 'before-leases', "leaseUntil" = CURRENT_TIMESTAMP WHERE "completing";

ALTER TABLE "Upload" DROP COLUMN "completing";
