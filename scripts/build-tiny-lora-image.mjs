#!/usr/bin/env node
/**
 * npm run image:tiny-lora [-- --force] [-- --tag=name:tag | --content-tag]
 * Builds the tiny-lora trainer image (development model) into the local Docker engine, or says it is up to date.
 * --content-tag tags it loraplane/tiny-lora:src-<hash of the sources> instead of :dev (see contentTag).
 * The engine is DOCKER_HOST when set, else /var/run/docker.sock (dockerode's defaults).
 */
import Docker from 'dockerode';
import { contentTag, ensureTinyLoraImage, TINY_LORA_IMAGE } from './lib/tiny-lora-image.mjs';

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--force' && a !== '--content-tag' && !a.startsWith('--tag='));
if (unknown.length > 0) {
  console.error(`unknown argument(s): ${unknown.join(' ')}\nusage: build-tiny-lora-image.mjs [--force] [--tag=name:tag | --content-tag]`);
  process.exit(2);
}
const tag = args.includes('--content-tag')
  ? await contentTag()
  : args.find((a) => a.startsWith('--tag='))?.slice('--tag='.length) || TINY_LORA_IMAGE;

try {
  const result = await ensureTinyLoraImage({ docker: new Docker(), tag, force: args.includes('--force') });
  // stdout carries the result for scripts; the human-readable progress went to stderr.
  console.log(JSON.stringify(result));
} catch (err) {
  console.error(`building ${tag} failed: ${err.stack ?? err}`);
  process.exit(1);
}
