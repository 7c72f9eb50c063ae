import { servedName } from './served-name';

/**
 * What each replica of a pool must serve, computed from the pool's desired state alone (pure, so it is unit-tested
 * without a database):
 * - every deployed version under its immutable name `adapter@vN`;
 * - every alias under the adapter's name, pointing at its version, or, on the first `canaryReplicas` replicas (in
 *   the pool's replica order: oldest first), at the canary version.
 * An alias and the version it points at share one set of files on the replica (the agent downloads a version once).
 */
export interface PlannedVersion {
  id: string;
  adapter: string;
  version: number;
}

export interface PlannedAlias {
  adapter: string;
  version: PlannedVersion;
  canary: PlannedVersion | null;
  canaryReplicas: number;
}

export interface DesiredEntry {
  /** The vLLM lora_name. */
  name: string;
  /** The immutable version this name serves (`adapter@vN`), also the agent's directory for the files. */
  servedVersion: string;
  versionId: string;
}

const served = (v: Pick<PlannedVersion, 'adapter' | 'version'>) => servedName(v.adapter, v.version);

export function desiredForReplicas(replicaIds: string[], deployed: PlannedVersion[], aliases: PlannedAlias[]): Map<string, DesiredEntry[]> {
  const out = new Map<string, DesiredEntry[]>();
  replicaIds.forEach((replicaId, index) => {
    const entries: DesiredEntry[] = deployed.map((v) => ({ name: served(v), servedVersion: served(v), versionId: v.id }));
    for (const a of aliases) {
      const target = a.canary && index < a.canaryReplicas ? a.canary : a.version;
      entries.push({ name: a.adapter, servedVersion: served(target), versionId: target.id });
    }
    out.set(replicaId, entries.sort((x, y) => x.name.localeCompare(y.name)));
  });
  return out;
}
