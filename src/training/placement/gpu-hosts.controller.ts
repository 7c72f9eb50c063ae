import { Controller, Delete, Get, Patch, Post } from '@nestjs/common';
import { z } from 'zod';
import { RequireScope } from '../../common/auth/auth.decorators';
import { listOf, toList } from '../../common/http/pagination';
import { ApiDoc, ZBody, ZParam } from '../../common/http/zod-validation';
import { gpuHostObject, GpuHostsService, registerHostBody, RegisterHostBody, toHostObject, updateHostBody, UpdateHostBody } from './gpu-hosts.service';
import { deletedOf } from '../../common/http/deleted';

const hostId = z.string().min(1);
const deletedHost = deletedOf('gpu_host');

/** Operators register the Docker engines that have GPUs, with their inventory. */
@Controller('v1/admin/gpu_hosts')
@RequireScope('admin')
export class GpuHostsController {
  constructor(private readonly hosts: GpuHostsService) {}

  @Post()
  @ApiDoc({ summary: 'Register a GPU host: a Docker engine (unix socket or TCP+TLS) and its GPUs', tags: ['admin'], response: gpuHostObject })
  async register(@ZBody(registerHostBody) body: RegisterHostBody) {
    return toHostObject(await this.hosts.register(body));
  }

  @Get()
  @ApiDoc({ summary: 'List GPU hosts with the job holding each GPU', tags: ['admin'], response: listOf(gpuHostObject) })
  async list() {
    return toList((await this.hosts.list()).map(toHostObject));
  }

  @Get(':host_id')
  @ApiDoc({ summary: 'Retrieve a GPU host', tags: ['admin'], response: gpuHostObject })
  async get(@ZParam('host_id', hostId) id: string) {
    return toHostObject(await this.hosts.get(id));
  }

  @Patch(':host_id')
  @ApiDoc({ summary: 'Change a GPU host: inventory, price, enabled', tags: ['admin'], response: gpuHostObject })
  async update(@ZParam('host_id', hostId) id: string, @ZBody(updateHostBody) body: UpdateHostBody) {
    return toHostObject(await this.hosts.update(id, body));
  }

  @Delete(':host_id')
  @ApiDoc({ summary: 'Remove a GPU host that runs no job', tags: ['admin'], response: deletedHost })
  async remove(@ZParam('host_id', hostId) id: string): Promise<z.infer<typeof deletedHost>> {
    await this.hosts.remove(id);
    return { id, object: 'gpu_host', deleted: true };
  }
}
