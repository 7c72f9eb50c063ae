// Tools the test suites drive besides the services: Debian's Chromium (the dashboard's end-to-end spec) and
// kubectl (the deploy manifests are rendered with its built-in kustomize).
import fs from 'node:fs';
import { aptInstall, which } from './system.mjs';

export const CHROMIUM = '/usr/bin/chromium';

export async function ensureChromium(log) {
  if (fs.existsSync(CHROMIUM)) return `${CHROMIUM} present`;
  await aptInstall(['chromium', 'fonts-liberation'], log);
  return `installed ${CHROMIUM}`;
}

export async function ensureKubectl(log) {
  const found = which('kubectl');
  if (found) return `kubectl at ${found}`;
  await aptInstall(['kubectl'], log);
  return 'kubectl installed from Debian';
}
