/**
 * The control plane's image (deploy/Dockerfile) built locally. The Dockerfile takes its base image as a build
 * argument (production uses an official Node image); here no registry can be reached, so the base is assembled from
 * this machine's node, npm, /bin/sh and /usr/bin/env and `docker import`ed (scripts/lib/rootfs.mjs), then the
 * ordinary multi-stage `docker build` runs on top of it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyInto, copyNode, importRootfs, inspectOrNull, sharedLibraries, writeEtc } from './rootfs.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BASE_IMAGE = 'loraplane/node-base:local';
export const CONTROL_PLANE_IMAGE = 'loraplane/control-plane:dev';
/** The non-root user the Dockerfile runs as (numeric, so Kubernetes can verify runAsNonRoot). */
export const APP_UID = 10001;
const NODE_VERSION_LABEL = 'io.loraplane.node-version';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

const RECIPE_LABEL = 'io.loraplane.base-recipe';
/** Bump when the base's contents change, so an existing base is rebuilt. 2: the libraries of native build tools. */
const BASE_RECIPE = '2';

/**
 * Shared libraries that native build tools in node_modules load (Vite's rolldown binding needs librt, libdl...),
 * which node itself does not link: an official node image has them, an assembled base must copy them.
 */
async function nativeToolLibraries() {
  const dir = path.join(ROOT, 'node_modules/@rolldown');
  const names = await fs.readdir(dir).catch(() => []);
  const libs = new Set();
  for (const name of names.filter((n) => n.startsWith('binding-'))) {
    for (const file of (await fs.readdir(path.join(dir, name))).filter((f) => f.endsWith('.node'))) {
      for (const lib of await sharedLibraries(path.join(dir, name, file))) libs.add(lib);
    }
  }
  return [...libs];
}

/** A base with what an official node image offers the Dockerfile: node, npm on PATH, /bin/sh (npm runs scripts with it). */
export async function ensureBaseImage({ docker, tag = BASE_IMAGE, log = console.error }) {
  const existing = await inspectOrNull(docker, tag);
  if (existing?.Config?.Labels?.[NODE_VERSION_LABEL] === process.version && existing.Config.Labels?.[RECIPE_LABEL] === BASE_RECIPE) return { tag, built: false };
  const started = Date.now();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'loraplane-node-base-'));
  try {
    await copyNode(root);
    for (const binary of ['/bin/dash', '/usr/bin/env']) {
      await copyInto(root, binary, 0o755);
      for (const lib of await sharedLibraries(binary)) await copyInto(root, lib);
    }
    for (const lib of await nativeToolLibraries()) await copyInto(root, lib);
    await fs.rename(path.join(root, 'bin/dash'), path.join(root, 'bin/sh'));
    const npmDir = path.dirname(path.dirname(await fs.realpath(path.join(path.dirname(process.execPath), 'npm'))));
    await fs.cp(npmDir, path.join(root, 'usr/local/lib/node_modules/npm'), { recursive: true, dereference: true });
    await fs.symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'));
    await writeEtc(root, [{ name: 'loraplane', uid: APP_UID, group: 'loraplane' }]);
    // This machine's trusted CAs (its registry may sit behind a TLS-intercepting proxy), as a Debian base has them.
    await copyInto(root, CA_BUNDLE);
    await importRootfs(docker, root, tag, [
      'ENV PATH=/usr/local/bin:/usr/bin:/bin',
      `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`,
      `LABEL ${NODE_VERSION_LABEL}=${process.version}`,
      `LABEL ${RECIPE_LABEL}=${BASE_RECIPE}`,
    ]);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
  log(`node base image ${tag} assembled in ${Date.now() - started} ms`);
  return { tag, built: true };
}

/** `docker build` of deploy/Dockerfile on `base`; resolves when the image is tagged, rejects with the build's tail. */
export async function buildControlPlaneImage({ tag = CONTROL_PLANE_IMAGE, base = BASE_IMAGE, log = console.error }) {
  const started = Date.now();
  // Host networking lets `npm ci` in the build stage reach the registry the host uses (and its proxy settings).
  const args = ['build', '--network', 'host', '-f', 'deploy/Dockerfile', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, '.'];
  const tail = [];
  const code = await new Promise((resolve, reject) => {
    const child = spawn('docker', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => {
      tail.push(...chunk.toString().split('\n').filter(Boolean));
      tail.splice(0, Math.max(0, tail.length - 40));
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`docker build exited ${code}:\n${tail.join('\n')}`);
  log(`control plane image ${tag} built in ${Date.now() - started} ms`);
  return { tag, ms: Date.now() - started };
}
