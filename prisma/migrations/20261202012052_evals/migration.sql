-- CreateEnum
CREATE TYPE "EvalTargetKind" AS ENUM ('api', 'base', 'adapter');

-- CreateEnum
CREATE TYPE "EvalRunStatus" AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');

-- CreateTable
CREATE TABLE "EvalTarget" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "EvalTargetKind" NOT NULL,
    "baseUrl" TEXT,
    "model" TEXT NOT NULL,
    "poolId" TEXT,
    "adapterVersion" INTEGER,
    "apiKeySealed" TEXT,
    "reasoning" BOOLEAN NOT NULL DEFAULT false,
    "maxTokens" INTEGER NOT NULL,
    "temperature" DOUBLE PRECISION,
    "concurrency" INTEGER NOT NULL,
    "stream" BOOLEAN NOT NULL DEFAULT false,
    "usdPerGpuHour" DOUBLE PRECISION,
    "gpus" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deletedAt" TIMESTAMP(3),

    CONSTRAINT "EvalTarget_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EvalSuite" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "datasetId" TEXT NOT NULL,
    "scorer" JSONB NOT NULL,
    "judgeTargetId" TEXT,
    "items" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EvalSuite_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EvalRun" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "suiteId" TEXT NOT NULL,
    "status" "EvalRunStatus" NOT NULL DEFAULT 'queued',
    "targetIds" TEXT[],
    "baselineTargetId" TEXT,
    "total" INTEGER NOT NULL,
    "error" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "EvalRun_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EvalResult" (
    "id" TEXT NOT NULL,
    "runId" TEXT NOT NULL,
    "targetId" TEXT NOT NULL,
    "itemIndex" INTEGER NOT NULL,
    "correct" BOOLEAN NOT NULL,
    "output" TEXT,
    "detail" TEXT,
    "error" TEXT,
    "sentAt" TIMESTAMP(3),
    "latencyMs" DOUBLE PRECISION,
    "ttftMs" DOUBLE PRECISION,
    "inputTokens" INTEGER,
    "cachedInputTokens" INTEGER,
    "outputTokens" INTEGER,
    "reasoningTokens" INTEGER,
    "attempts" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EvalResult_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EvalGate" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "poolId" TEXT NOT NULL,
    "adapterName" TEXT NOT NULL,
    "suiteId" TEXT NOT NULL,
    "baselineTargetId" TEXT NOT NULL,
    "minMargin" DOUBLE PRECISION NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "EvalGate_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "EvalTarget_projectId_name_key" ON "EvalTarget"("projectId", "name");

-- CreateIndex
CREATE UNIQUE INDEX "EvalSuite_projectId_name_key" ON "EvalSuite"("projectId", "name");

-- CreateIndex
CREATE INDEX "EvalRun_projectId_createdAt_idx" ON "EvalRun"("projectId", "createdAt");

-- CreateIndex
CREATE INDEX "EvalRun_status_idx" ON "EvalRun"("status");

-- CreateIndex
CREATE UNIQUE INDEX "EvalResult_runId_targetId_itemIndex_key" ON "EvalResult"("runId", "targetId", "itemIndex");

-- CreateIndex
CREATE INDEX "EvalGate_projectId_idx" ON "EvalGate"("projectId");

-- CreateIndex
CREATE UNIQUE INDEX "EvalGate_poolId_adapterName_key" ON "EvalGate"("poolId", "adapterName");

-- AddForeignKey
ALTER TABLE "EvalTarget" ADD CONSTRAINT "EvalTarget_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalTarget" ADD CONSTRAINT "EvalTarget_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "ServingPool"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalSuite" ADD CONSTRAINT "EvalSuite_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalSuite" ADD CONSTRAINT "EvalSuite_datasetId_fkey" FOREIGN KEY ("datasetId") REFERENCES "Dataset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalRun" ADD CONSTRAINT "EvalRun_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalRun" ADD CONSTRAINT "EvalRun_suiteId_fkey" FOREIGN KEY ("suiteId") REFERENCES "EvalSuite"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalResult" ADD CONSTRAINT "EvalResult_runId_fkey" FOREIGN KEY ("runId") REFERENCES "EvalRun"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalGate" ADD CONSTRAINT "EvalGate_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "ServingPool"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EvalGate" ADD CONSTRAINT "EvalGate_suiteId_fkey" FOREIGN KEY ("suiteId") REFERENCES "EvalSuite"("id") ON DELETE CASCADE ON UPDATE CASCADE;
