// What bringing up each service needs from the machine: running a command, finding a binary, probing a port,
// waiting, installing a Debian package (one apt-get at a time), and starting a daemon that outlives this script.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../migrations.mjs';

export const DATA_DIR = path.join(ROOT, '.data');

/** Runs a command to completion; rejects with its output when it fails. */
export function run(command, args, { env = process.env, timeoutMs = 15 * 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.slice(-4000)}`)),
    );
  });
}

/** Whether `name` is an executable on PATH (or the sbin folders, which a non-login root shell may lack). */
export function which(name) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this folder; try the next one
    }
  }
  return null;
}

export function tcpOpen(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitFor(what, probe, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(intervalMs);
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

export function requireRoot(what) {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root; install/start it yourself or run as root`);
}

// apt: one `apt-get update` per process, and one apt-get at a time (dpkg holds a lock), while the four services are
// otherwise brought up in parallel.
let aptQueue = Promise.resolve();
let aptUpdated = false;
export function aptInstall(packages, log) {
  const install = async () => {
    requireRoot(`installing ${packages.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' };
    if (!aptUpdated) {
      log(`apt-get update`);
      await run('apt-get', ['update'], { env });
      aptUpdated = true;
    }
    log(`apt-get install ${packages.join(' ')}`);
    // No recommends: they add nothing these services need (and needrestart would ask questions).
    await run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env });
  };
  const result = aptQueue.then(install);
  // The next install waits for this one whatever its outcome; the outcome itself goes to this caller.
  aptQueue = result.then(
    () => undefined,
    () => undefined,
  );
  return result;
}

/** Starts a long-lived process in its own session, output to .data/<name>.log, so that it outlives this script. */
export function spawnDetached(name, command, args) {
  fs.mkdirSync(DATA_DIR, { recursive: true });
  const logFile = path.join(DATA_DIR, `${name}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], cwd: ROOT });
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, signal) => (exited = signal ?? `exit ${code}`));
  child.on('error', (error) => (exited = error.message));
  child.unref();
  const logTail = () => {
    try {
      return fs.readFileSync(logFile, 'utf8').slice(-2000);
    } catch (error) {
      return `(no log: ${error.message})`;
    }
  };
  return { child, logFile, exited: () => exited, logTail };
}

/** waitFor that gives up at once when the process we started has died, with its log. */
export async function waitForStarted(what, started, probe, timeoutMs) {
  await waitFor(
    what,
    async () => {
      if (started.exited()) throw new Error(`${what} exited (${started.exited()}); ${started.logFile}:\n${started.logTail()}`);
      return probe();
    },
    timeoutMs,
  );
}
