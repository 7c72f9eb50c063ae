-- CreateEnum
CREATE TYPE "AdapterSource" AS ENUM ('job', 'checkpoint');

-- CreateTable
CREATE TABLE "Adapter" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Adapter_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AdapterVersion" (
    "id" TEXT NOT NULL,
    "adapterId" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "s3Prefix" TEXT NOT NULL,
    "files" JSONB NOT NULL,
    "peftConfig" JSONB NOT NULL,
    "baseModel" TEXT NOT NULL,
    "rank" INTEGER NOT NULL,
    "targetModules" TEXT[],
    "source" "AdapterSource" NOT NULL,
    "jobId" TEXT,
    "checkpointId" TEXT,
    "datasetId" TEXT,
    "hyperparameters" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deletedAt" TIMESTAMP(3),

    CONSTRAINT "AdapterVersion_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Adapter_projectId_name_key" ON "Adapter"("projectId", "name");

-- CreateIndex
CREATE INDEX "AdapterVersion_projectId_jobId_idx" ON "AdapterVersion"("projectId", "jobId");

-- CreateIndex
CREATE UNIQUE INDEX "AdapterVersion_adapterId_version_key" ON "AdapterVersion"("adapterId", "version");

-- AddForeignKey
ALTER TABLE "Adapter" ADD CONSTRAINT "Adapter_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AdapterVersion" ADD CONSTRAINT "AdapterVersion_adapterId_fkey" FOREIGN KEY ("adapterId") REFERENCES "Adapter"("id") ON DELETE CASCADE ON UPDATE CASCADE;
