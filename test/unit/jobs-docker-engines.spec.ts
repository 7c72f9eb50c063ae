import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dockerOptions } from '../../src/training/runtime/docker-runtime';

describe('GPU host engine addresses', () => {
  it('connects by unix socket', () => {
    expect(dockerOptions({ url: 'unix:///run/docker.sock' })).toEqual({ socketPath: '/run/docker.sock' });
  });

  it('connects by TCP, with TLS material read from the named files (never stored)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-tls-'));
    for (const f of ['ca', 'cert', 'key']) fs.writeFileSync(path.join(dir, `${f}.pem`), `-----${f}-----`);
    const tls = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    const opts = dockerOptions({ url: 'tcp://gpu-7.internal:2376', tls });
    expect(opts).toMatchObject({ host: 'gpu-7.internal', port: 2376, protocol: 'https' });
    expect([opts.ca, opts.cert, opts.key].map(String)).toEqual(['-----ca-----', '-----cert-----', '-----key-----']);
    expect(dockerOptions({ url: 'tcp://gpu-7.internal' })).toEqual({ host: 'gpu-7.internal', port: 2375, protocol: 'http' });
  });

  it('refuses other schemes, and a TLS file that is missing names it', () => {
    expect(() => dockerOptions({ url: 'http://h:2375' })).toThrow(/unsupported engine URL http:\/\/h:2375/);
    expect(() => dockerOptions({ url: 'tcp://h:2376', tls: { ca: '/nope/ca.pem', cert: '/nope/c.pem', key: '/nope/k.pem' } })).toThrow(/\/nope\/ca.pem/);
  });
});
