import { Controller, Delete, Get, Patch, Post } from '@nestjs/common';
import { z } from 'zod';
import { RequireScope } from '../../common/auth/auth.decorators';
import { ApiDoc, ZBody, ZParam } from '../../common/http/zod-validation';
import { GpuHostsService, registerHostBody, RegisterHostBody, toHostObject, updateHostBody, UpdateHostBody } from './gpu-hosts.service';

const hostId = z.string().min(1);

/** Operators register the Docker engines that have GPUs, with their inventory. */
@Controller('v1/admin/gpu_hosts')
@RequireScope('admin')
export class GpuHostsController {
  constructor(private readonly hosts: GpuHostsService) {}

  @Post()
  @ApiDoc({ summary: 'Register a GPU host: a Docker engine (unix socket or TCP+TLS) and its GPUs', tags: ['admin'] })
  async register(@ZBody(registerHostBody) body: RegisterHostBody) {
    return toHostObject(await this.hosts.register(body));
  }

  @Get()
  @ApiDoc({ summary: 'List GPU hosts with the job holding each GPU', tags: ['admin'] })
  async list() {
    const hosts = await this.hosts.list();
    return { object: 'list', data: hosts.map(toHostObject), has_more: false };
  }

  @Get(':host_id')
  @ApiDoc({ summary: 'Retrieve a GPU host', tags: ['admin'] })
  async get(@ZParam('host_id', hostId) id: string) {
    return toHostObject(await this.hosts.get(id));
  }

  @Patch(':host_id')
  @ApiDoc({ summary: 'Change a GPU host: inventory, price, enabled', tags: ['admin'] })
  async update(@ZParam('host_id', hostId) id: string, @ZBody(updateHostBody) body: UpdateHostBody) {
    return toHostObject(await this.hosts.update(id, body));
  }

  @Delete(':host_id')
  @ApiDoc({ summary: 'Remove a GPU host that runs no job', tags: ['admin'] })
  async remove(@ZParam('host_id', hostId) id: string) {
    await this.hosts.remove(id);
    return { id, object: 'gpu_host', deleted: true };
  }
}
