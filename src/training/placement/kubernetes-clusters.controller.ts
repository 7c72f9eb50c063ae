import { Controller, Delete, Get, Patch, Post } from '@nestjs/common';
import { z } from 'zod';
import { RequireScope } from '../../common/auth/auth.decorators';
import { ApiDoc, ZBody, ZParam } from '../../common/http/zod-validation';
import { KubernetesClustersService, registerClusterBody, RegisterClusterBody, toClusterObject, updateClusterBody, UpdateClusterBody } from './kubernetes-clusters.service';

const clusterId = z.string().min(1);

/** Operators register the Kubernetes clusters (a namespace each) that run training Jobs, and their models. */
@Controller('v1/admin/kubernetes_clusters')
@RequireScope('admin')
export class KubernetesClustersController {
  constructor(private readonly clusters: KubernetesClustersService) {}

  @Post()
  @ApiDoc({ summary: 'Register a Kubernetes cluster namespace (kubeconfig path on the workers, or in-cluster) and the models it runs', tags: ['admin'] })
  async register(@ZBody(registerClusterBody) body: RegisterClusterBody) {
    return toClusterObject(await this.clusters.register(body));
  }

  @Get()
  @ApiDoc({ summary: 'List Kubernetes clusters', tags: ['admin'] })
  async list() {
    return { object: 'list', data: (await this.clusters.list()).map(toClusterObject), has_more: false };
  }

  @Get(':cluster_id')
  @ApiDoc({ summary: 'Retrieve a Kubernetes cluster', tags: ['admin'] })
  async get(@ZParam('cluster_id', clusterId) id: string) {
    return toClusterObject(await this.clusters.get(id));
  }

  @Patch(':cluster_id')
  @ApiDoc({ summary: 'Change a Kubernetes cluster: models, scheduling, price, enabled', tags: ['admin'] })
  async update(@ZParam('cluster_id', clusterId) id: string, @ZBody(updateClusterBody) body: UpdateClusterBody) {
    return toClusterObject(await this.clusters.update(id, body));
  }

  @Delete(':cluster_id')
  @ApiDoc({ summary: 'Remove a Kubernetes cluster that runs no job', tags: ['admin'] })
  async remove(@ZParam('cluster_id', clusterId) id: string) {
    await this.clusters.remove(id);
    return { id, object: 'kubernetes_cluster', deleted: true };
  }
}
