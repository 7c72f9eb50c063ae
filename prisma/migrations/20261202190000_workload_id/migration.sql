-- RenameColumn: the core names workloads, not containers (a rename keeps every stored id)
ALTER TABLE "FineTuningJob" RENAME COLUMN "containerId" TO "workloadId";
