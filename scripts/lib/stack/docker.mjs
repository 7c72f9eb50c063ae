// The Docker engine (started as Debian's dockerd when down) and the tiny trainer image the test suites run.
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { ROOT } from '../migrations.mjs';
import { aptInstall, requireRoot, spawnDetached, waitFor, waitForStarted, which } from './system.mjs';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

async function dockerAnswers(docker) {
  try {
    await docker.ping({ abortSignal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false; // no socket, refused or no answer: all mean "not up"
  }
}

/** A dockerd that is alive but still starting holds /var/run/docker.pid; a dead one's pid file blocks a new start. */
function runningDockerdPid() {
  const pidFile = '/var/run/docker.pid';
  let pid;
  try {
    pid = fs.readFileSync(pidFile, 'utf8').trim();
  } catch {
    return null; // no pid file: no dockerd
  }
  // "pid (comm) state ...": a killed dockerd can linger as a zombie (state Z) where PID 1 does not reap orphans.
  let stat = '';
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // process gone
  }
  const alive = stat.includes('(dockerd)') && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  if (alive) return Number(pid);
  fs.rmSync(pidFile, { force: true });
  return null;
}

export async function ensureDocker(socketPath, log) {
  const docker = new Docker({ socketPath });
  if (await dockerAnswers(docker)) return { docker, how: 'running' };
  if (socketPath !== DEFAULT_DOCKER_SOCKET) throw new Error(`no Docker engine answers on ${socketPath} (not started here)`);
  let how = 'started';
  if (!which('dockerd')) {
    await aptInstall(['docker.io'], log);
    how = 'installed and started';
  }
  if (await dockerAnswers(docker)) return { docker, how: 'running' }; // the package started it
  const pid = runningDockerdPid();
  if (pid) {
    log(`dockerd (pid ${pid}) is running but not answering yet; waiting for it`);
    await waitFor('the Docker engine', () => dockerAnswers(docker), 60_000, 250);
    return { docker, how: 'waited for' };
  }
  requireRoot('starting dockerd');
  const started = spawnDetached('dockerd', which('dockerd'), []);
  log(`dockerd started (pid ${started.child.pid}, log ${path.relative(ROOT, started.logFile)})`);
  await waitForStarted('the Docker engine', started, () => dockerAnswers(docker), 60_000);
  return { docker, how };
}

export async function ensureTinyImage(docker, tag, log) {
  // Imported when needed: building the image pulls in its own dependencies, which `npm run dev` without Docker skips.
  const { ensureTinyLoraImage } = await import('../tiny-lora-image.mjs');
  await ensureTinyLoraImage({ docker, tag, log });
  return tag;
}

/** The tag that names the current trainer sources (`loraplane/tiny-lora:src-<hash>`), imported when needed as above. */
export async function sourceTag() {
  const { contentTag } = await import('../tiny-lora-image.mjs');
  return contentTag();
}
