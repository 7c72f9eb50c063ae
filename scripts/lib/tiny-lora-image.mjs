/**
 * Builds the tiny-lora trainer image (a DEVELOPMENT model, see jobs/tiny-lora/README.md) without a registry or a
 * Dockerfile: no base image can be pulled here, so the root filesystem is assembled from the host's node binary,
 * the shared libraries it links, and jobs/tiny-lora/*.js, then `docker import`ed through dockerode.
 *
 * The image is labelled with a hash of the trainer sources; ensureTinyLoraImage skips the build when the tagged image
 * already carries the same hash (and node version and recipe), so `npm run dev` pays for it once.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import tar from 'tar-fs';

const run = promisify(execFile);

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TINY_LORA_SOURCE_DIR = path.join(REPO_ROOT, 'jobs', 'tiny-lora');
export const TINY_LORA_IMAGE = 'loraplane/tiny-lora:dev';

export const LABELS = {
  sourceHash: 'io.loraplane.source-sha256',
  nodeVersion: 'io.loraplane.node-version',
  recipe: 'io.loraplane.image-recipe',
};
/** Bump when the root filesystem layout below changes, so existing images are rebuilt. */
const RECIPE_VERSION = '1';
const NOBODY = 65534;

/** The files that go into /app: every .js file of jobs/tiny-lora, sorted so the hash is stable. */
export async function trainerSourceFiles(dir = TINY_LORA_SOURCE_DIR) {
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.js')).sort();
  if (!names.includes('trainer.js')) throw new Error(`${dir} has no trainer.js`);
  return names.map((n) => path.join(dir, n));
}

/** sha256 over (name, NUL, content, NUL) of each trainer file: changes when any file is edited, added or removed. */
export async function trainerSourceHash(files) {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(path.basename(file)).update('\0');
    hash.update(await fs.readFile(file)).update('\0');
  }
  return hash.digest('hex');
}

async function inspectOrNull(docker, name) {
  try {
    return await docker.getImage(name).inspect();
  } catch (err) {
    if (err.statusCode === 404) return null;
    throw err;
  }
}

async function hasObjcopy() {
  try {
    await run('objcopy', ['--version']);
    return true;
  } catch {
    return false; // not installed: fall back to a plain copy (a larger image, same behaviour)
  }
}

/** Absolute paths of the shared libraries (and the loader) a binary needs, from ldd. */
async function sharedLibraries(binary) {
  const { stdout } = await run('ldd', [binary]);
  const libs = [];
  for (const line of stdout.split('\n')) {
    const m = /(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

async function copyInto(root, hostPath, mode) {
  const dest = path.join(root, hostPath);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.copyFile(hostPath, dest); // copyFile follows symlinks: the image gets the real bytes at the linked name
  if (mode !== undefined) await fs.chmod(dest, mode);
}

/** Assemble the root filesystem in `root`; returns the node binary's host path. */
async function buildRootfs(root, sourceFiles) {
  const node = await fs.realpath(process.execPath);
  const nodeDest = path.join(root, 'usr/local/bin/node');
  await fs.mkdir(path.dirname(nodeDest), { recursive: true });
  if (await hasObjcopy()) await run('objcopy', ['--strip-debug', node, nodeDest]);
  else await fs.copyFile(node, nodeDest);
  await fs.chmod(nodeDest, 0o755);
  for (const lib of await sharedLibraries(node)) await copyInto(root, lib);

  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.writeFile(path.join(root, 'etc/passwd'), `root:x:0:0:root:/root:/bin/false\nnobody:x:${NOBODY}:${NOBODY}:nobody:/nonexistent:/bin/false\n`);
  await fs.writeFile(path.join(root, 'etc/group'), `root:x:0:\nnogroup:x:${NOBODY}:\n`);
  // glibc resolves host names through these (nss files/dns are built into libc since 2.34).
  await fs.writeFile(path.join(root, 'etc/nsswitch.conf'), 'hosts: files dns\n');
  // /tmp and /scratch are tmpfs mounts at run time; the directories exist so the image also works without them.
  for (const dir of ['tmp', 'scratch']) {
    await fs.mkdir(path.join(root, dir), { recursive: true });
    await fs.chmod(path.join(root, dir), 0o1777);
  }
  await fs.mkdir(path.join(root, 'app'), { recursive: true });
  for (const file of sourceFiles) {
    const dest = path.join(root, 'app', path.basename(file));
    await fs.copyFile(file, dest);
    await fs.chmod(dest, 0o644); // readable by the non-root user, writable by nobody
  }
  return node;
}

async function importRootfs(docker, root, tag, labels) {
  const [repo, version] = splitTag(tag);
  // umask 0 keeps the sticky, world-writable /tmp and /scratch; every file belongs to root inside the image.
  const stream = tar.pack(root, { umask: 0, map: (h) => ({ ...h, uid: 0, gid: 0, uname: 'root', gname: 'root' }) });
  const changes = [
    'ENV PATH=/usr/local/bin:/usr/bin:/bin',
    'WORKDIR /app',
    `USER ${NOBODY}:${NOBODY}`,
    'CMD ["node","/app/trainer.js"]',
    ...Object.entries(labels).map(([k, v]) => `LABEL ${k}=${v}`),
  ];
  const progress = await docker.importImage(stream, { repo, tag: version, changes });
  await new Promise((resolve, reject) => docker.modem.followProgress(progress, (err, out) => (err ? reject(err) : resolve(out))));
}

function splitTag(tag) {
  const colon = tag.lastIndexOf(':');
  if (colon <= tag.lastIndexOf('/')) return [tag, 'latest'];
  return [tag.slice(0, colon), tag.slice(colon + 1)];
}

/**
 * A tag that names the current sources (with the node version and recipe): `loraplane/tiny-lora:src-<12 hex>`.
 * Test runs that depend on the trainer's behaviour use it, so runs from different checkouts on one engine never
 * rebuild each other's image under a shared tag mid-run.
 */
export async function contentTag(repo = TINY_LORA_IMAGE.slice(0, TINY_LORA_IMAGE.lastIndexOf(':'))) {
  const sourceHash = await trainerSourceHash(await trainerSourceFiles());
  const id = createHash('sha256').update(`${sourceHash}\0${process.version}\0${RECIPE_VERSION}`).digest('hex');
  return `${repo}:src-${id.slice(0, 12)}`;
}

/**
 * Make sure `tag` is an image of the current trainer sources; build it if not (or when `force`).
 * @param {{ docker: import('dockerode'), tag?: string, log?: (msg: string) => void, force?: boolean }} options
 * @returns {Promise<{ tag: string, imageId: string, built: boolean, sourceHash: string, ms: number }>}
 */
export async function ensureTinyLoraImage({ docker, tag = TINY_LORA_IMAGE, log = console.error, force = false }) {
  const started = Date.now();
  const sourceFiles = await trainerSourceFiles();
  const sourceHash = await trainerSourceHash(sourceFiles);
  const wanted = { [LABELS.sourceHash]: sourceHash, [LABELS.nodeVersion]: process.version, [LABELS.recipe]: RECIPE_VERSION };

  const existing = await inspectOrNull(docker, tag);
  const current = existing?.Config?.Labels ?? {};
  if (!force && existing && Object.entries(wanted).every(([k, v]) => current[k] === v)) {
    log(`tiny-lora image ${tag} is up to date (sources ${sourceHash.slice(0, 12)}; checked in ${Date.now() - started} ms)`);
    return { tag, imageId: existing.Id, built: false, sourceHash, ms: Date.now() - started };
  }

  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'loraplane-tiny-lora-rootfs-'));
  try {
    await buildRootfs(root, sourceFiles);
    await importRootfs(docker, root, tag, { ...wanted, 'io.loraplane.model': 'tiny-lora', 'io.loraplane.dev-model': 'true' });
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
  const image = await docker.getImage(tag).inspect();
  if (existing && existing.Id !== image.Id) await removeStaleImage(docker, existing.Id, log);
  const ms = Date.now() - started;
  log(`tiny-lora image ${tag} built in ${ms} ms (${(image.Size / 1e6).toFixed(1)} MB, sources ${sourceHash.slice(0, 12)})`);
  return { tag, imageId: image.Id, built: true, sourceHash, ms };
}

/** The previous build lost its tag; remove it unless a container still uses it (then it stays, and we say so). */
async function removeStaleImage(docker, imageId, log) {
  try {
    await docker.getImage(imageId).remove();
  } catch (err) {
    log(`kept the previous tiny-lora image ${imageId.slice(7, 19)}: ${err.statusCode === 409 ? 'a container still uses it' : err.message}`);
  }
}
