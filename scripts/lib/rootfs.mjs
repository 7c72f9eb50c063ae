/**
 * Helpers to assemble a minimal root filesystem from this machine's own binaries and `docker import` it: no base
 * image can be pulled here (no registry), so the images loraplane builds locally start from these pieces.
 * Used by the tiny-lora trainer image and by the control plane's base image.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import tar from 'tar-fs';

export const run = promisify(execFile);
export const NOBODY = 65534;

export async function inspectOrNull(docker, name) {
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
export async function sharedLibraries(binary) {
  const { stdout } = await run('ldd', [binary]);
  const libs = [];
  for (const line of stdout.split('\n')) {
    const m = /(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

export async function copyInto(root, hostPath, mode) {
  const dest = path.join(root, hostPath);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.copyFile(hostPath, dest); // copyFile follows symlinks: the image gets the real bytes at the linked name
  if (mode !== undefined) await fs.chmod(dest, mode);
}

/** This machine's node binary (debug symbols stripped when objcopy is here) and its libraries, at /usr/local/bin/node. */
export async function copyNode(root) {
  const node = await fs.realpath(process.execPath);
  const nodeDest = path.join(root, 'usr/local/bin/node');
  await fs.mkdir(path.dirname(nodeDest), { recursive: true });
  if (await hasObjcopy()) await run('objcopy', ['--strip-debug', node, nodeDest]);
  else await fs.copyFile(node, nodeDest);
  await fs.chmod(nodeDest, 0o755);
  for (const lib of await sharedLibraries(node)) await copyInto(root, lib);
  return node;
}

/** /etc/passwd, group and nsswitch.conf with root and `users` (the ids a non-root image runs as), plus /tmp. */
export async function writeEtc(root, users = [{ name: 'nobody', uid: NOBODY, group: 'nogroup' }]) {
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  const passwd = users.map((u) => `${u.name}:x:${u.uid}:${u.uid}:${u.name}:/nonexistent:/bin/false`);
  const groups = users.map((u) => `${u.group}:x:${u.uid}:`);
  await fs.writeFile(path.join(root, 'etc/passwd'), ['root:x:0:0:root:/root:/bin/false', ...passwd, ''].join('\n'));
  await fs.writeFile(path.join(root, 'etc/group'), ['root:x:0:', ...groups, ''].join('\n'));
  // glibc resolves host names through these (nss files/dns are built into libc since 2.34).
  await fs.writeFile(path.join(root, 'etc/nsswitch.conf'), 'hosts: files dns\n');
  await fs.mkdir(path.join(root, 'tmp'), { recursive: true });
  await fs.chmod(path.join(root, 'tmp'), 0o1777);
}

export function splitTag(tag) {
  const colon = tag.lastIndexOf(':');
  if (colon <= tag.lastIndexOf('/')) return [tag, 'latest'];
  return [tag.slice(0, colon), tag.slice(colon + 1)];
}

/** `docker import` of `root` as `tag`, with Dockerfile-style `changes` (ENV, USER, CMD, LABEL...). */
export async function importRootfs(docker, root, tag, changes) {
  const [repo, version] = splitTag(tag);
  // umask 0 keeps the sticky, world-writable /tmp; every file belongs to root inside the image.
  const stream = tar.pack(root, { umask: 0, map: (h) => ({ ...h, uid: 0, gid: 0, uname: 'root', gname: 'root' }) });
  const progress = await docker.importImage(stream, { repo, tag: version, changes });
  await new Promise((resolve, reject) => docker.modem.followProgress(progress, (err, out) => (err ? reject(err) : resolve(out))));
}
