#!/usr/bin/env node
/**
 * npm run image:control-plane [-- --tag=name:tag] [-- --base=image]
 * Builds the control plane's image (deploy/Dockerfile) into the local Docker engine. Without --base, the base image
 * is assembled locally (no registry pulls); with --base, that image is used as the Dockerfile's BASE_IMAGE.
 */
import Docker from 'dockerode';
import { parseArgs } from 'node:util';
import { buildControlPlaneImage, CONTROL_PLANE_IMAGE, ensureBaseImage } from './lib/control-plane-image.mjs';

const { values } = parseArgs({ options: { tag: { type: 'string', default: CONTROL_PLANE_IMAGE }, base: { type: 'string' } } });
try {
  const base = values.base ?? (await ensureBaseImage({ docker: new Docker() })).tag;
  console.log(JSON.stringify(await buildControlPlaneImage({ tag: values.tag, base })));
} catch (err) {
  console.error(`building ${values.tag} failed: ${err.message ?? err}`);
  process.exit(1);
}
