import 'reflect-metadata';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { AppModule } from '../../src/app.module';
import { INFERENCE_ROUTE, isAdmin, mayCallModels, mayManageKey, Principal } from '../../src/common/auth/auth.decorators';
import { Config } from '../../src/config/config';
import { controllersOf } from '../../src/openapi/openapi.builder';

const key = (...scopes: string[]): Principal => ({ projectId: 'proj_1', keyId: 'key_1', scopes });

/**
 * Restricted keys are denied by default: an `inference` key reaches a route of the API only where the route is
 * marked for it. This list is the whole of that, read from the controllers' metadata: widening it is a decision a
 * review should see (an application's key that can read datasets or roll an alias back is no longer restricted).
 */
describe('restricted API keys', () => {
  const config = Config.fromEnv({ DATABASE_URL: 'postgresql://build/none', REDIS_URL: 'redis://build', S3_BUCKET: 'build-only', LORAPLANE_MODE: 'dev' });

  it('opens exactly these API routes to an inference key, all of them reads', () => {
    const open: string[] = [];
    for (const controller of controllersOf(AppModule.register(config))) {
      const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        const handler = controller.prototype[name];
        if (typeof handler !== 'function' || Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
        if (!Reflect.getMetadata(INFERENCE_ROUTE, handler) && !Reflect.getMetadata(INFERENCE_ROUTE, controller)) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
        const parts = [base, Reflect.getMetadata(PATH_METADATA, handler)].map((x) => String(x).replace(/^\/|\/$/g, '')).filter(Boolean);
        open.push(`${method} /${parts.join('/')}`);
      }
    }
    expect(open.sort()).toEqual(['GET /v1/models', 'GET /v1/models/:model', 'GET /v1/project']);
  });

  it('lets only project, admin and inference keys call models, and ranks keys for managing them', () => {
    expect([key('project'), key('*'), key('admin'), key('inference'), key('read', 'inference')].map(mayCallModels)).toEqual([true, true, true, true, true]);
    expect([key('read'), key()].map(mayCallModels)).toEqual([false, false]);
    // A project key manages restricted keys and its peers, never the operator's; a restricted key manages none above it.
    expect([mayManageKey(key('project'), ['inference']), mayManageKey(key('project'), ['project']), mayManageKey(key('project'), ['*']), mayManageKey(key('inference'), ['project'])]).toEqual([true, true, false, false]);
    expect([key('*'), key('admin'), key('project'), key('inference')].map(isAdmin)).toEqual([true, true, false, false]);
  });
});
