-- AlterTable
ALTER TABLE "ServingPool" ADD COLUMN     "autoDeploy" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "ProviderModel" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "baseUrl" TEXT NOT NULL,
    "upstreamModel" TEXT NOT NULL,
    "apiKeySealed" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ProviderModel_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ProviderModel_projectId_name_key" ON "ProviderModel"("projectId", "name");

-- AddForeignKey
ALTER TABLE "ProviderModel" ADD CONSTRAINT "ProviderModel_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Change notifications for the in-memory key cache and routing table (gateway and api roles): every statement that
-- changes a key, a pool, a replica's state, a deployment, an alias, a job or a provider model sends the table's name
-- on channel loraplane_changes (once per statement, and Postgres folds duplicates within a transaction).
-- The body is an E-string with \073 for each semicolon: the wasm migration engine splits scripts at every literal
-- semicolon, which would cut a plpgsql body apart.
CREATE OR REPLACE FUNCTION loraplane_notify_change() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN PERFORM pg_notify(''loraplane_changes'', TG_TABLE_NAME)\073 RETURN NULL\073 END\073';

CREATE TRIGGER "ApiKey_notify" AFTER INSERT OR UPDATE OR DELETE ON "ApiKey" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "Project_notify" AFTER INSERT OR UPDATE OR DELETE ON "Project" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "ServingPool_notify" AFTER INSERT OR UPDATE OR DELETE ON "ServingPool" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "Replica_notify" AFTER INSERT OR UPDATE OR DELETE ON "Replica" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "Deployment_notify" AFTER INSERT OR UPDATE OR DELETE ON "Deployment" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "Alias_notify" AFTER INSERT OR UPDATE OR DELETE ON "Alias" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "AdapterVersion_notify" AFTER UPDATE OR DELETE ON "AdapterVersion" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "FineTuningJob_notify" AFTER UPDATE ON "FineTuningJob" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
CREATE TRIGGER "ProviderModel_notify" AFTER INSERT OR UPDATE OR DELETE ON "ProviderModel" FOR EACH STATEMENT EXECUTE FUNCTION loraplane_notify_change();
