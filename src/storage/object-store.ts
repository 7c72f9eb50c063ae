import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Injectable, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { DomainError } from '../common/domain-error';
import { Config } from '../config/config';

export interface StoredObject {
  key: string;
  bytes: number;
}

export interface PresignedPost {
  url: string;
  fields: Record<string, string>;
  keyPrefix: string;
  maxBytes: number;
  expiresAt: number;
}

const MISSING = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);

/**
 * Everything loraplane keeps as bytes lives here: datasets, adapters, checkpoints. S3 protocol (AWS S3, MinIO, Ceph
 * RGW, R2; s3rver in dev and tests). Vendor errors are translated: a missing object is `null`/not_found, an
 * unreachable store is service_unavailable (503 + Retry-After), never a raw SDK error.
 */
@Injectable()
export class ObjectStore {
  private readonly logger = new Logger(ObjectStore.name);
  private readonly client: S3Client;
  /** Signs URLs with the endpoint training containers can reach, which may differ from ours. */
  private readonly publicClient: S3Client;
  readonly bucket: string;

  constructor(private readonly config: Config) {
    const env = config.env;
    const base = {
      region: env.S3_REGION,
      forcePathStyle: env.S3_FORCE_PATH_STYLE,
      credentials: env.S3_ACCESS_KEY_ID
        ? { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY! }
        : undefined,
      maxAttempts: 3,
      // Without these a store that accepts the connection and then says nothing holds a request (and the worker
      // task behind it) forever. socketTimeout counts idle time (also while a body streams), so a long transfer
      // that keeps moving is fine.
      requestHandler: { connectionTimeout: env.S3_CONNECT_TIMEOUT_MS, socketTimeout: env.S3_TIMEOUT_MS },
    };
    this.client = new S3Client({ ...base, endpoint: env.S3_ENDPOINT });
    this.publicClient = new S3Client({ ...base, endpoint: env.S3_PUBLIC_ENDPOINT ?? env.S3_ENDPOINT });
    this.bucket = env.S3_BUCKET;
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (!this.config.env.S3_CREATE_BUCKET || !isMissing(err)) throw this.translate(err, 'check bucket');
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
      this.logger.log(`created bucket ${this.bucket}`);
    }
  }

  /** For /readyz. */
  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(2000) });
  }

  /** Streams `body` to `key` with S3 multipart upload; never buffers more than a few parts. */
  async put(key: string, body: Readable | Buffer | string, contentType = 'application/octet-stream'): Promise<void> {
    try {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType },
        queueSize: 2,
        partSize: 8 * 1024 * 1024,
        leavePartsOnError: false,
      });
      await upload.done();
    } catch (err) {
      throw this.translate(err, `upload ${key}`);
    }
  }

  async get(key: string): Promise<Readable | null> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return res.Body as Readable;
    } catch (err) {
      if (isMissing(err)) return null;
      throw this.translate(err, `read ${key}`);
    }
  }

  async head(key: string): Promise<StoredObject | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, bytes: res.ContentLength ?? 0 };
    } catch (err) {
      if (isMissing(err)) return null;
      throw this.translate(err, `stat ${key}`);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of res.Contents ?? []) out.push({ key: o.Key!, bytes: o.Size ?? 0 });
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.translate(err, `list ${prefix}`);
    }
    return out;
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        );
      } catch (err) {
        throw this.translate(err, `delete ${batch.length} objects`);
      }
    }
  }

  async presignGet(key: string, ttlSeconds = this.config.env.PRESIGN_TTL_SECONDS): Promise<string> {
    return getSignedUrl(this.publicClient, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: ttlSeconds });
  }

  /**
   * A POST policy that can only write under `keyPrefix` and only up to `maxBytes` per file: what a training
   * container gets instead of credentials. (s3rver does not enforce policies; AWS S3 and MinIO do.)
   */
  async presignPost(keyPrefix: string, maxBytes: number, ttlSeconds = this.config.env.PRESIGN_TTL_SECONDS): Promise<PresignedPost> {
    const { url, fields } = await createPresignedPost(this.publicClient, {
      Bucket: this.bucket,
      Key: `${keyPrefix}\${filename}`,
      Conditions: [['content-length-range', 0, maxBytes]],
      Expires: ttlSeconds,
    });
    // The trainer sets `key` itself (prefix + file name); the policy's starts-with condition limits it.
    const { key: _key, ...rest } = fields;
    return { url, fields: rest, keyPrefix, maxBytes, expiresAt: Math.floor(Date.now() / 1000) + ttlSeconds };
  }

  private translate(err: unknown, action: string): DomainError {
    if (err instanceof DomainError) return err;
    const name = err instanceof S3ServiceException ? err.name : (err as Error)?.name ?? 'Error';
    this.logger.warn({ err, action }, `object store: ${action} failed (${name})`);
    return new DomainError('service_unavailable', `Object storage is unavailable (${action}): try again shortly`, null, {
      cause: err,
      retryAfterSeconds: 5,
    });
  }
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return MISSING.has(e?.name ?? '') || e?.$metadata?.httpStatusCode === 404;
}
