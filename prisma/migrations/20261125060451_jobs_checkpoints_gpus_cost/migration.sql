-- AlterTable
ALTER TABLE "FineTuningJob" ADD COLUMN     "costActual" JSONB,
ADD COLUMN     "costEstimate" JSONB,
ADD COLUMN     "idempotencyHash" TEXT,
ADD COLUMN     "idempotencyKey" TEXT,
ADD COLUMN     "modelDeletedAt" TIMESTAMP(3),
ADD COLUMN     "placement" JSONB,
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "Checkpoint" (
    "id" TEXT NOT NULL,
    "jobId" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "step" INTEGER NOT NULL,
    "keyPrefix" TEXT NOT NULL,
    "files" JSONB NOT NULL,
    "metrics" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Checkpoint_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "GpuHost" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "engineUrl" TEXT NOT NULL,
    "tls" JSONB,
    "gpus" JSONB NOT NULL,
    "usdPerGpuHour" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "GpuHost_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "GpuAllocation" (
    "id" TEXT NOT NULL,
    "hostId" TEXT NOT NULL,
    "gpuIndex" INTEGER NOT NULL,
    "jobId" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "GpuAllocation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Checkpoint_projectId_jobId_idx" ON "Checkpoint"("projectId", "jobId");

-- CreateIndex
CREATE UNIQUE INDEX "Checkpoint_jobId_attempt_step_key" ON "Checkpoint"("jobId", "attempt", "step");

-- CreateIndex
CREATE UNIQUE INDEX "GpuHost_name_key" ON "GpuHost"("name");

-- CreateIndex
CREATE INDEX "GpuAllocation_jobId_idx" ON "GpuAllocation"("jobId");

-- CreateIndex
CREATE UNIQUE INDEX "GpuAllocation_hostId_gpuIndex_key" ON "GpuAllocation"("hostId", "gpuIndex");

-- CreateIndex
CREATE UNIQUE INDEX "FineTuningJob_projectId_idempotencyKey_key" ON "FineTuningJob"("projectId", "idempotencyKey");

-- AddForeignKey
ALTER TABLE "Checkpoint" ADD CONSTRAINT "Checkpoint_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "FineTuningJob"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "GpuAllocation" ADD CONSTRAINT "GpuAllocation_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "GpuHost"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "GpuAllocation" ADD CONSTRAINT "GpuAllocation_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "FineTuningJob"("id") ON DELETE CASCADE ON UPDATE CASCADE;
