-- AlterTable
ALTER TABLE "ServingPool" ADD COLUMN     "gpusPerReplica" INTEGER,
ADD COLUMN     "usdPerGpuHour" DOUBLE PRECISION;

-- AlterTable
ALTER TABLE "EvalRun" ADD COLUMN     "comparisonId" TEXT;

-- CreateTable
CREATE TABLE "EvalComparison" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "suiteIds" TEXT[],
    "targetIds" TEXT[],
    "baselineTargetId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EvalComparison_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "EvalRun_comparisonId_idx" ON "EvalRun"("comparisonId");

-- CreateIndex
CREATE UNIQUE INDEX "EvalComparison_projectId_name_key" ON "EvalComparison"("projectId", "name");

-- AddForeignKey
ALTER TABLE "EvalRun" ADD CONSTRAINT "EvalRun_comparisonId_fkey" FOREIGN KEY ("comparisonId") REFERENCES "EvalComparison"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalComparison" ADD CONSTRAINT "EvalComparison_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;
