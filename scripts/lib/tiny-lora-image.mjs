/**
 * Builds the tiny-lora trainer image (a DEVELOPMENT model, see jobs/tiny-lora/README.md) without a registry or a
 * Dockerfile: no base image can be pulled here, so the root filesystem is assembled from the host's node binary,
 * the shared libraries it links, and jobs/tiny-lora/*.js, then `docker import`ed through dockerode.
 *
 * The image is labelled with a hash of the trainer sources; ensureTinyLoraImage skips the build when the tagged image
 * already carries the same hash (and node version and recipe), so `npm run dev` pays for it once.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyNode, importRootfs, inspectOrNull, NOBODY, writeEtc } from './rootfs.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TINY_LORA_SOURCE_DIR = path.join(REPO_ROOT, 'jobs', 'tiny-lora');
/** The contract's JSON Schema, which the trainer's spec checks read their limits from (spec-checks.js). */
const CONTRACT_SCHEMA = path.join(REPO_ROOT, 'jobs', 'schema', 'job-spec.schema.json');
export const TINY_LORA_IMAGE = 'loraplane/tiny-lora:dev';

export const LABELS = {
  sourceHash: 'io.loraplane.source-sha256',
  nodeVersion: 'io.loraplane.node-version',
  recipe: 'io.loraplane.image-recipe',
};
/** Bump when the root filesystem layout below changes, so existing images are rebuilt. */
const RECIPE_VERSION = '2';

/**
 * The files that go into the image: every .js file of jobs/tiny-lora (into /app), sorted so the hash is stable, and
 * the contract's schema (into /schema: the same place relative to /app as jobs/schema to jobs/tiny-lora).
 */
export async function trainerSourceFiles(dir = TINY_LORA_SOURCE_DIR) {
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.js')).sort();
  if (!names.includes('trainer.js')) throw new Error(`${dir} has no trainer.js`);
  return [...names.map((n) => path.join(dir, n)), CONTRACT_SCHEMA];
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

/** Assemble the root filesystem in `root`; returns the node binary's host path. */
async function buildRootfs(root, sourceFiles) {
  const node = await copyNode(root);
  await writeEtc(root);
  // /tmp and /scratch are tmpfs mounts at run time; the directories exist so the image also works without them.
  await fs.mkdir(path.join(root, 'scratch'), { recursive: true });
  await fs.chmod(path.join(root, 'scratch'), 0o1777);
  await fs.mkdir(path.join(root, 'app'), { recursive: true });
  await fs.mkdir(path.join(root, 'schema'), { recursive: true });
  for (const file of sourceFiles) {
    const dest = path.join(root, file === CONTRACT_SCHEMA ? 'schema' : 'app', path.basename(file));
    await fs.copyFile(file, dest);
    await fs.chmod(dest, 0o644); // readable by the non-root user, writable by nobody
  }
  return node;
}

const imageChanges = (labels) => [
  'ENV PATH=/usr/local/bin:/usr/bin:/bin',
  'WORKDIR /app',
  `USER ${NOBODY}:${NOBODY}`,
  'CMD ["node","/app/trainer.js"]',
  ...Object.entries(labels).map(([k, v]) => `LABEL ${k}=${v}`),
];

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
    await importRootfs(docker, root, tag, imageChanges({ ...wanted, 'io.loraplane.model': 'tiny-lora', 'io.loraplane.dev-model': 'true' }));
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
