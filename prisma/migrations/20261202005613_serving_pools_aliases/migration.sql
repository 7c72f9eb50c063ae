-- CreateEnum
CREATE TYPE "ReplicaStatus" AS ENUM ('pending', 'ready', 'not_ready', 'unreachable');

-- CreateEnum
CREATE TYPE "AliasAction" AS ENUM ('rollout', 'canary', 'promote', 'rollback');

-- AlterEnum
ALTER TYPE "AdapterSource" ADD VALUE 'import';

-- AlterTable
ALTER TABLE "AdapterVersion" ADD COLUMN     "importedFrom" TEXT;

-- CreateTable
CREATE TABLE "ServingPool" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "baseModel" TEXT NOT NULL,
    "servedModelName" TEXT NOT NULL,
    "maxLoraRank" INTEGER NOT NULL,
    "maxLoras" INTEGER NOT NULL,
    "maxCpuLoras" INTEGER NOT NULL,
    "supportedTargets" TEXT[],
    "probePrompt" TEXT NOT NULL,
    "revision" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ServingPool_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Replica" (
    "id" TEXT NOT NULL,
    "poolId" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "vllmUrl" TEXT NOT NULL,
    "agentUrl" TEXT NOT NULL,
    "agentTokenSealed" TEXT NOT NULL,
    "status" "ReplicaStatus" NOT NULL DEFAULT 'pending',
    "observed" JSONB,
    "lastError" TEXT,
    "lastSeenAt" TIMESTAMP(3),
    "failures" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Replica_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Deployment" (
    "id" TEXT NOT NULL,
    "poolId" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "versionId" TEXT NOT NULL,
    "probe" JSONB,
    "warning" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Deployment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Alias" (
    "id" TEXT NOT NULL,
    "poolId" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "adapterId" TEXT NOT NULL,
    "versionId" TEXT NOT NULL,
    "canaryVersionId" TEXT,
    "canaryReplicas" INTEGER NOT NULL DEFAULT 0,
    "previousVersionId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Alias_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AliasEvent" (
    "id" TEXT NOT NULL,
    "aliasId" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "action" "AliasAction" NOT NULL,
    "fromVersion" INTEGER,
    "toVersion" INTEGER NOT NULL,
    "canaryReplicas" INTEGER,
    "actor" TEXT NOT NULL,
    "reason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AliasEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ServingPool_projectId_name_key" ON "ServingPool"("projectId", "name");

-- CreateIndex
CREATE INDEX "Replica_projectId_idx" ON "Replica"("projectId");

-- CreateIndex
CREATE UNIQUE INDEX "Replica_poolId_name_key" ON "Replica"("poolId", "name");

-- CreateIndex
CREATE INDEX "Deployment_projectId_idx" ON "Deployment"("projectId");

-- CreateIndex
CREATE UNIQUE INDEX "Deployment_poolId_versionId_key" ON "Deployment"("poolId", "versionId");

-- CreateIndex
CREATE INDEX "Alias_projectId_idx" ON "Alias"("projectId");

-- CreateIndex
CREATE UNIQUE INDEX "Alias_poolId_adapterId_key" ON "Alias"("poolId", "adapterId");

-- CreateIndex
CREATE INDEX "AliasEvent_aliasId_createdAt_idx" ON "AliasEvent"("aliasId", "createdAt");

-- AddForeignKey
ALTER TABLE "ServingPool" ADD CONSTRAINT "ServingPool_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Replica" ADD CONSTRAINT "Replica_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "ServingPool"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Deployment" ADD CONSTRAINT "Deployment_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "ServingPool"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Deployment" ADD CONSTRAINT "Deployment_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "AdapterVersion"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Alias" ADD CONSTRAINT "Alias_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "ServingPool"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Alias" ADD CONSTRAINT "Alias_adapterId_fkey" FOREIGN KEY ("adapterId") REFERENCES "Adapter"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AliasEvent" ADD CONSTRAINT "AliasEvent_aliasId_fkey" FOREIGN KEY ("aliasId") REFERENCES "Alias"("id") ON DELETE CASCADE ON UPDATE CASCADE;
