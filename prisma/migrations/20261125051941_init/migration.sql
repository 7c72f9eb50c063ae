-- CreateEnum
CREATE TYPE "DatasetStatus" AS ENUM ('ready', 'invalid');

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('validating_files', 'queued', 'running', 'succeeded', 'failed', 'cancelled');

-- CreateEnum
CREATE TYPE "EventLevel" AS ENUM ('info', 'warn', 'error');

-- CreateEnum
CREATE TYPE "EventType" AS ENUM ('message', 'metrics');

-- CreateTable
CREATE TABLE "Project" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Project_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "scopes" TEXT[],
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Dataset" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "filename" TEXT NOT NULL,
    "purpose" TEXT NOT NULL,
    "bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "s3Key" TEXT NOT NULL,
    "format" TEXT NOT NULL,
    "status" "DatasetStatus" NOT NULL,
    "stats" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deletedAt" TIMESTAMP(3),

    CONSTRAINT "Dataset_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "FineTuningJob" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "status" "JobStatus" NOT NULL DEFAULT 'validating_files',
    "trainingFileId" TEXT NOT NULL,
    "validationFileId" TEXT,
    "suffix" TEXT,
    "seed" INTEGER NOT NULL,
    "hyperparameters" JSONB NOT NULL,
    "method" JSONB NOT NULL,
    "metadata" JSONB,
    "integrations" JSONB,
    "error" JSONB,
    "fineTunedModel" TEXT,
    "trainedTokens" INTEGER,
    "resultFiles" JSONB,
    "outputPrefix" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "containerId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "FineTuningJob_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "JobEvent" (
    "id" TEXT NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "jobId" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "level" "EventLevel" NOT NULL,
    "type" "EventType" NOT NULL,
    "message" TEXT NOT NULL,
    "data" JSONB,
    "sourceKey" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "JobEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Project_slug_key" ON "Project"("slug");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_hash_key" ON "ApiKey"("hash");

-- CreateIndex
CREATE INDEX "ApiKey_projectId_idx" ON "ApiKey"("projectId");

-- CreateIndex
CREATE INDEX "Dataset_projectId_createdAt_idx" ON "Dataset"("projectId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Dataset_projectId_sha256_key" ON "Dataset"("projectId", "sha256");

-- CreateIndex
CREATE UNIQUE INDEX "FineTuningJob_fineTunedModel_key" ON "FineTuningJob"("fineTunedModel");

-- CreateIndex
CREATE INDEX "FineTuningJob_projectId_createdAt_idx" ON "FineTuningJob"("projectId", "createdAt");

-- CreateIndex
CREATE INDEX "FineTuningJob_status_idx" ON "FineTuningJob"("status");

-- CreateIndex
CREATE INDEX "JobEvent_jobId_seq_idx" ON "JobEvent"("jobId", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "JobEvent_jobId_sourceKey_key" ON "JobEvent"("jobId", "sourceKey");

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Dataset" ADD CONSTRAINT "Dataset_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FineTuningJob" ADD CONSTRAINT "FineTuningJob_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FineTuningJob" ADD CONSTRAINT "FineTuningJob_trainingFileId_fkey" FOREIGN KEY ("trainingFileId") REFERENCES "Dataset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FineTuningJob" ADD CONSTRAINT "FineTuningJob_validationFileId_fkey" FOREIGN KEY ("validationFileId") REFERENCES "Dataset"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobEvent" ADD CONSTRAINT "JobEvent_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "FineTuningJob"("id") ON DELETE CASCADE ON UPDATE CASCADE;
