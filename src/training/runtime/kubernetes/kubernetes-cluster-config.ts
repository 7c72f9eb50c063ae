import { KubeConfig, V1Toleration } from '@kubernetes/client-node';
import { KubernetesCluster } from '../../../generated/prisma/client';
import { KubernetesTarget } from './kubernetes-runtime';

/**
 * A registration's credentials: a kubeconfig file on the worker's machine (never stored in the database), or the
 * worker pod's own service account when no path is registered.
 */
export function loadKubeConfig(cluster: Pick<KubernetesCluster, 'kubeconfigPath' | 'context'>): KubeConfig {
  const kc = new KubeConfig();
  if (cluster.kubeconfigPath) {
    kc.loadFromFile(cluster.kubeconfigPath);
    if (cluster.context) kc.setCurrentContext(cluster.context);
  } else {
    kc.loadFromCluster();
  }
  return kc;
}

export function kubernetesTarget(cluster: KubernetesCluster): KubernetesTarget {
  return {
    name: cluster.name,
    namespace: cluster.namespace,
    nodeSelector: cluster.nodeSelector as Record<string, string>,
    tolerations: cluster.tolerations as V1Toleration[],
    priorityClassName: cluster.priorityClassName,
    kueueQueue: cluster.kueueQueue,
    gpuResource: cluster.gpuResource,
    ttlSecondsAfterFinished: cluster.ttlSecondsAfterFinished,
  };
}
