import { DomainError } from '../common/domain-error';
import { ConfigError, parseEnv } from '../config/config.schema';
import { importPrefix } from './import-prefix';

const scope = { bucket: 'loraplane', projectId: 'proj_A', shared: ['imports/', 'teams/ml/'] };

function refusal(uri: string): DomainError {
  try {
    importPrefix(uri, scope);
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error(`importPrefix accepted ${uri}`);
}

describe('importPrefix: which S3 prefixes a project may import adapters from', () => {
  it("accepts the project's own prefix and the shared ones, with or without the trailing slash", () => {
    expect(importPrefix('s3://loraplane/projects/proj_A/adapters/x/', scope)).toBe('projects/proj_A/adapters/x/');
    expect(importPrefix('s3://loraplane/imports/run-1', scope)).toBe('imports/run-1/');
    expect(importPrefix('s3://loraplane/teams/ml/a/b/', scope)).toBe('teams/ml/a/b/');
  });

  it.each([
    ['s3://loraplane/projects/proj_B/adapters/x/', /this project's projects\/proj_A\//],
    ['s3://loraplane/projects/proj_AB/x/', /this project's/], // a prefix of the id is not the project
    ['s3://loraplane/imports/../projects/proj_B/', /'\.\.'/],
    ['s3://loraplane/imports//x/', /empty/],
    ['s3://loraplane/importsX/run/', /shared import prefix/],
    ['s3://elsewhere/imports/run/', /bucket 'loraplane'/],
    ['s3://loraplane/', /expected s3:\/\//],
    ['imports/run/', /expected s3:\/\//],
    ['s3://loraplane/imports/a\nb/', /control characters/],
  ])('refuses %j with a 400 naming s3_prefix', (uri, message) => {
    const err = refusal(uri);
    expect({ code: err.code, param: err.param }).toEqual({ code: 'invalid_request', param: 's3_prefix' });
    expect(err.message).toMatch(message);
  });
});

describe('ADAPTER_IMPORT_PREFIXES', () => {
  const base = { DATABASE_URL: 'postgresql://x@h/db', REDIS_URL: 'redis://h:6379/0', S3_BUCKET: 'loraplane', LORAPLANE_MODE: 'dev' };

  it('is a comma-separated list, imports/ by default', () => {
    expect(parseEnv(base).ADAPTER_IMPORT_PREFIXES).toEqual(['imports/']);
    expect(parseEnv({ ...base, ADAPTER_IMPORT_PREFIXES: 'imports/, teams/ml/ ,' }).ADAPTER_IMPORT_PREFIXES).toEqual(['imports/', 'teams/ml/']);
  });

  it.each(['projects/', 'imports', '/imports/', 'imports/../projects/'])('refuses %j, which could expose tenant data or match more than meant', (value) => {
    expect(() => parseEnv({ ...base, ADAPTER_IMPORT_PREFIXES: value })).toThrow(ConfigError);
  });
});
