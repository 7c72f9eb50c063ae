-- CreateTable
CREATE TABLE "KubernetesCluster" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kubeconfigPath" TEXT,
    "context" TEXT,
    "namespace" TEXT NOT NULL,
    "models" TEXT[],
    "nodeSelector" JSONB NOT NULL DEFAULT '{}',
    "tolerations" JSONB NOT NULL DEFAULT '[]',
    "priorityClassName" TEXT,
    "kueueQueue" TEXT,
    "gpuResource" TEXT NOT NULL DEFAULT 'nvidia.com/gpu',
    "ttlSecondsAfterFinished" INTEGER NOT NULL DEFAULT 3600,
    "usdPerGpuHour" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "KubernetesCluster_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "KubernetesCluster_name_key" ON "KubernetesCluster"("name");
