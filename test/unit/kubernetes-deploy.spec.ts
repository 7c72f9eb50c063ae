import { loadAllYaml } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { buildTrainingJob } from '../../src/training/runtime/kubernetes/kubernetes-manifests';

/**
 * deploy/kubernetes rendered by Debian's `kubectl kustomize` (scripts/lib/stack.mjs installs kubectl for the test
 * stack) and every object validated against the Kubernetes OpenAPI schemas (kubernetes-models), plus the rules the
 * manifests promise: one image for every role, probes, non-root, the training Role limited to what the runtime calls.
 */
const ROOT = path.join(__dirname, '../..');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

function render(overlay: string): Obj[] {
  const yaml = execFileSync('kubectl', ['kustomize', path.join(ROOT, 'deploy/kubernetes/overlays', overlay)], { encoding: 'utf8' });
  return loadAllYaml(yaml) as Obj[];
}

const find = (objects: Obj[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!;

describe.each(['single-namespace', 'production'])('overlay %s', (overlay) => {
  const objects = render(overlay);

  test('every object is valid against its Kubernetes schema', () => {
    expect(objects.length).toBeGreaterThanOrEqual(14);
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(`${o.apiVersion}/${o.kind}: ${Model ? 'known' : 'no schema'}`).toBe(`${o.apiVersion}/${o.kind}: known`);
      expect(() => new Model(o as never).validate()).not.toThrow();
    }
  });

  test('api, worker and gateway Deployments and the migration Job run one image, chosen by LORAPLANE_ROLE', () => {
    const roles: Record<string, string> = {};
    const images = new Set<string>();
    for (const o of objects.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
      const c = o.spec.template.spec.containers[0];
      images.add(c.image);
      roles[o.metadata.name] = c.env.find((e: Obj) => e.name === 'LORAPLANE_ROLE').value;
      expect(c.envFrom).toEqual([{ configMapRef: { name: 'loraplane-config' } }, { secretRef: { name: 'loraplane-secrets' } }]);
    }
    expect(roles).toEqual({ 'loraplane-api': 'api', 'loraplane-worker': 'worker', 'loraplane-gateway': 'gateway', 'loraplane-migrations': 'migrations' });
    expect(images.size).toBe(1);
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false); // secrets by reference only
  });

  test('probes on /healthz and /readyz, non-root and read-only everywhere, PDBs for each Deployment', () => {
    for (const name of ['api', 'worker', 'gateway']) {
      const d = find(objects, 'Deployment', `loraplane-${name}`);
      const pod = d.spec.template.spec;
      const c = pod.containers[0];
      expect([c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path]).toEqual(['/healthz', '/readyz']);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
      expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === `loraplane-${name}`);
      expect(pdb).toBeDefined();
    }
    expect(find(objects, 'Service', 'loraplane-api').spec.ports[0].targetPort).toBe('http');
    expect(find(objects, 'Service', 'loraplane-gateway').spec.ports[0].targetPort).toBe('http');
  });

  test('only the worker holds an API token, bound to a Role limited to Jobs, Pods, pod logs and the attempt Secrets', () => {
    const worker = find(objects, 'Deployment', 'loraplane-worker');
    expect(worker.spec.template.spec.serviceAccountName).toBe('loraplane-worker');
    expect(find(objects, 'ServiceAccount', 'loraplane').automountServiceAccountToken).toBe(false);
    const role = find(objects, 'Role', 'loraplane-training');
    const binding = find(objects, 'RoleBinding', 'loraplane-training');
    const trainingNs = overlay === 'production' ? 'loraplane-training' : 'loraplane';
    expect(role.metadata.namespace).toBe(trainingNs);
    expect(binding.metadata.namespace).toBe(trainingNs);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'loraplane-worker', namespace: worker.metadata.namespace }]);
    expect(role.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get', 'list', 'watch', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'get'] },
    ]);
    expect(objects.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toBe(false);
  });
});

test("the runtime's training Job is valid against the batch/v1 Job schema", () => {
  const job = buildTrainingJob(
    { jobId: 'ftjob-Abc', projectId: 'proj_1', attempt: 1, model: 'gpt-oss-20b', image: 'img:1', env: { LORAPLANE_JOB_SPEC: '{}' }, resources: { memoryMb: 1024, cpus: 2, scratchMb: 100 }, gpuCount: 1 },
    { namespace: 'ml', nodeSelector: { a: 'b' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }], priorityClassName: 'p', kueueQueue: 'q', gpuResource: 'nvidia.com/gpu', ttlSecondsAfterFinished: 60 },
    { deadlineSeconds: 100, stopGraceSeconds: 30 },
  );
  expect(() => new Job(JSON.parse(JSON.stringify(job)) as Obj).validate()).not.toThrow();
  const broken = JSON.parse(JSON.stringify(job)) as Obj;
  broken.spec.backoffLimit = 'zero';
  expect(() => new Job(broken).validate()).toThrow(); // the validator does reject what is wrong
});
