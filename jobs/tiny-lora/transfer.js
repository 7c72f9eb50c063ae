'use strict';
/**
 * Moving bytes: data and checkpoints in through presigned GETs (size and sha256 checked), files out through the
 * presigned POST policy, both retried on network errors and 5xx.
 */
const fs = require('node:fs');
const crypto = require('node:crypto');
const { Readable, Transform } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const { TrainerError, logDiag } = require('./errors');

const HTTP_ATTEMPTS = 3;
/** Per request; generous because a large dataset is one GET, and a hung connection must not hold a GPU forever. */
const HTTP_TIMEOUT_MS = 10 * 60 * 1000;

function isRetryableStatus(status) {
  return status === 429 || status >= 500;
}

async function sleep(ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** One GET of `url` into `dest`, hashing on the way. Throws on network errors, including a body cut off midway. */
async function downloadOnce(url, dest) {
  const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  if (!res.ok) {
    await res.body?.cancel();
    return { status: res.status };
  }
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body), meter, fs.createWriteStream(dest));
  return { bytes, sha256: hash.digest('hex') };
}

function describeFetchError(err) {
  return `${err.message}${err.cause ? ` (${err.cause.code ?? err.cause.message})` : ''}`;
}

/** Download `file.url` to `dest`, retrying network errors and 5xx; the bytes and sha256 must match the spec. */
async function downloadVerified(file, dest, label) {
  let lastProblem = '';
  for (let attempt = 1; attempt <= HTTP_ATTEMPTS; attempt++) {
    if (attempt > 1) await sleep(250 * (attempt - 1));
    let got;
    try {
      got = await downloadOnce(file.url, dest);
    } catch (err) {
      lastProblem = describeFetchError(err);
      logDiag(`${label}: download attempt ${attempt} failed: ${lastProblem}`);
      continue;
    }
    if (got.status !== undefined) {
      lastProblem = `HTTP ${got.status}`;
      if (!isRetryableStatus(got.status)) break; // 403 = expired or wrong signature: retrying will not help
      continue;
    }
    if (got.bytes !== file.bytes || got.sha256 !== file.sha256) {
      throw new TrainerError(
        'data_unreachable',
        `${label}: downloaded ${got.bytes} bytes with sha256 ${got.sha256}, expected ${file.bytes} bytes with sha256 ${file.sha256}`,
      );
    }
    return;
  }
  throw new TrainerError('data_unreachable', `${label}: could not download: ${lastProblem}`);
}

function sha256Hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** ": Code: Message" from an S3 XML error body; the raw body is not echoed (it ends up in user-visible job events). */
function s3ErrorSummary(body) {
  const field = (name) => new RegExp(`<${name}>([^<]{0,200})</${name}>`).exec(body)?.[1];
  const code = field('Code');
  return code ? `: ${code}${field('Message') ? `: ${field('Message')}` : ''}` : '';
}

/** POST one file with the presigned policy: every policy field, then key, then the file last (S3 requires it). */
async function uploadFile(output, file) {
  if (file.data.length > output.max_bytes) {
    throw new TrainerError('upload_failed', `${file.name} is ${file.data.length} bytes, over output.max_bytes ${output.max_bytes}`);
  }
  let lastProblem = '';
  for (let attempt = 1; attempt <= HTTP_ATTEMPTS; attempt++) {
    const form = new FormData();
    // The trainer chooses each file's key; a `key` left in fields would make the form carry two.
    for (const [k, v] of Object.entries(output.fields)) if (k.toLowerCase() !== 'key') form.append(k, v);
    form.append('key', output.key_prefix + file.name);
    form.append('file', new Blob([file.data]), file.name);
    try {
      const res = await fetch(output.url, { method: 'POST', body: form, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
      if (res.ok) {
        await res.body?.cancel();
        return;
      }
      lastProblem = `HTTP ${res.status}${s3ErrorSummary(await res.text())}`;
      if (!isRetryableStatus(res.status)) break;
    } catch (err) {
      lastProblem = describeFetchError(err);
    }
    logDiag(`upload of ${file.name} attempt ${attempt} failed: ${lastProblem}`);
    if (attempt < HTTP_ATTEMPTS) await sleep(250 * attempt);
  }
  throw new TrainerError('upload_failed', `upload of ${file.name} failed: ${lastProblem}`);
}

module.exports = { downloadVerified, uploadFile, sha256Hex };
