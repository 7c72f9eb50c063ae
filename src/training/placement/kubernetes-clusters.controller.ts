import { Controller, Delete, Get, Patch, Post } from '@nestjs/common';
import { z } from 'zod';
import { RequireScope } from '../../common/auth/auth.decorators';
import { listOf, toList } from '../../common/http/pagination';
import { ApiDoc, ZBody, ZParam } from '../../common/http/zod-validation';
import { clusterObject, KubernetesClustersService, registerClusterBody, RegisterClusterBody, toClusterObject, updateClusterBody, UpdateClusterBody } from './kubernetes-clusters.service';
import { deletedOf } from '../../common/http/deleted';

const clusterId = z.string().min(1);
const deletedCluster = deletedOf('kubernetes_cluster');

/** Operators register the Kubernetes clusters (a namespace each) that run training Jobs, and their models. */
@Controller('v1/admin/kubernetes_clusters')
@RequireScope('admin')
export class KubernetesClustersController {
  constructor(private readonly clusters: KubernetesClustersService) {}

  @Post()
  @ApiDoc({ summary: 'Register a Kubernetes cluster namespace (kubeconfig path on the workers, or in-cluster) and the models it runs', tags: ['admin'], response: clusterObject })
  async register(@ZBody(registerClusterBody) body: RegisterClusterBody) {
    return toClusterObject(await this.clusters.register(body));
  }

  @Get()
  @ApiDoc({ summary: 'List Kubernetes clusters', tags: ['admin'], response: listOf(clusterObject) })
  async list() {
    return toList((await this.clusters.list()).map(toClusterObject));
  }

  @Get(':cluster_id')
  @ApiDoc({ summary: 'Retrieve a Kubernetes cluster', tags: ['admin'], response: clusterObject })
  async get(@ZParam('cluster_id', clusterId) id: string) {
    return toClusterObject(await this.clusters.get(id));
  }

  @Patch(':cluster_id')
  @ApiDoc({ summary: 'Change a Kubernetes cluster: models, scheduling, price, enabled', tags: ['admin'], response: clusterObject })
  async update(@ZParam('cluster_id', clusterId) id: string, @ZBody(updateClusterBody) body: UpdateClusterBody) {
    return toClusterObject(await this.clusters.update(id, body));
  }

  @Delete(':cluster_id')
  @ApiDoc({ summary: 'Remove a Kubernetes cluster that runs no job', tags: ['admin'], response: deletedCluster })
  async remove(@ZParam('cluster_id', clusterId) id: string): Promise<z.infer<typeof deletedCluster>> {
    await this.clusters.remove(id);
    return { id, object: 'kubernetes_cluster', deleted: true };
  }
}
