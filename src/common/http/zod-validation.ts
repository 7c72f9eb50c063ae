import { Body, Param, PipeTransform, Query } from '@nestjs/common';
import { z, ZodType } from 'zod';
import { DomainError } from '../domain-error';

/**
 * Request validation and API documentation from one schema: `@ZBody(schema)` validates the body with zod and records
 * the schema on the handler; the OpenAPI builder reads the same record. A schema can't drift from its docs.
 */
export const DOC_METADATA = 'loraplane:openapi';

export interface RouteDoc {
  summary?: string;
  tags?: string[];
  body?: ZodType;
  bodyContentType?: 'application/json' | 'multipart/form-data';
  query?: ZodType;
  response?: ZodType;
  responseContentType?: string;
  /** Text forms the route also answers with (a `format` query picks one): documented as strings beside the JSON. */
  textResponseTypes?: string[];
  /** Public routes (health, docs) need no API key. */
  public?: boolean;
}

function addDoc(target: object, key: string | symbol, doc: Partial<RouteDoc>) {
  const existing: RouteDoc = Reflect.getMetadata(DOC_METADATA, target, key) ?? {};
  Reflect.defineMetadata(DOC_METADATA, { ...existing, ...doc }, target, key);
}

/** `messages.0.role` -> `messages[0].role`, OpenAI's way of naming a field. */
export function fieldPath(path: PropertyKey[]): string {
  return path.reduce<string>((acc, part) => {
    if (typeof part === 'number') return `${acc}[${part}]`;
    return acc ? `${acc}.${String(part)}` : String(part);
  }, '');
}

export class ZodPipe<T extends ZodType> implements PipeTransform {
  /** `name`: the path parameter a scalar schema validates, so its errors name it. */
  constructor(private readonly schema: T, private readonly where: 'body' | 'query' | 'path', private readonly name?: string) {}

  transform(value: unknown): z.output<T> {
    const result = this.schema.safeParse(value ?? {});
    if (result.success) return result.data;
    const issues = result.error.issues;
    const first = issues[0];
    const param = fieldPath(first.path) || this.name || null;
    const describe = (i: (typeof issues)[number]) => {
      const name = fieldPath(i.path) || this.name;
      return name ? `'${name}': ${i.message}` : i.message;
    };
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1, 4).map(describe).join('; ')})` : '';
    throw new DomainError('invalid_request', `Invalid ${this.where}: ${describe(first)}${more}`, param);
  }
}

export function ZBody(schema: ZodType): ParameterDecorator {
  return (target, key, index) => {
    addDoc(target, key!, { body: schema });
    Body(new ZodPipe(schema, 'body'))(target, key, index);
  };
}

export function ZQuery(schema: ZodType): ParameterDecorator {
  return (target, key, index) => {
    addDoc(target, key!, { query: schema });
    Query(new ZodPipe(schema, 'query'))(target, key, index);
  };
}

export function ZParam(name: string, schema: ZodType): ParameterDecorator {
  return (target, key, index) => Param(name, new ZodPipe(schema, 'path', name))(target, key, index);
}

/** Summary, tags and response schema of a route, for the OpenAPI document. */
export function ApiDoc(doc: Omit<RouteDoc, 'body' | 'query'> & { multipartBody?: ZodType }): MethodDecorator {
  return (target, key) => {
    const { multipartBody, ...rest } = doc;
    addDoc(target, key, multipartBody ? { ...rest, body: multipartBody, bodyContentType: 'multipart/form-data' } : rest);
  };
}
