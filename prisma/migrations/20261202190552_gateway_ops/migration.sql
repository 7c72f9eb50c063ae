-- AlterTable
ALTER TABLE "Alias" ADD COLUMN     "canaryRequestShare" DOUBLE PRECISION;

-- AlterTable
ALTER TABLE "AliasEvent" ADD COLUMN     "canaryRequestShare" DOUBLE PRECISION;

-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "rpmLimit" INTEGER,
ADD COLUMN     "tpmLimit" INTEGER;

-- AlterTable
ALTER TABLE "Project" ADD COLUMN     "rpmLimit" INTEGER,
ADD COLUMN     "tpmLimit" INTEGER;

-- CreateTable
CREATE TABLE "UsageBucket" (
    "projectId" TEXT NOT NULL,
    "apiKeyId" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "resolved" TEXT NOT NULL,
    "minute" TIMESTAMP(3) NOT NULL,
    "requests" INTEGER NOT NULL DEFAULT 0,
    "errors" INTEGER NOT NULL DEFAULT 0,
    "inputTokens" BIGINT NOT NULL DEFAULT 0,
    "outputTokens" BIGINT NOT NULL DEFAULT 0,
    "latencyMsSum" DOUBLE PRECISION NOT NULL DEFAULT 0,

    CONSTRAINT "UsageBucket_pkey" PRIMARY KEY ("projectId","apiKeyId","model","resolved","minute")
);

-- CreateIndex
CREATE INDEX "UsageBucket_projectId_minute_idx" ON "UsageBucket"("projectId", "minute");
