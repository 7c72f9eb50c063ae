/**
 * The CLI's request and response types, from the OpenAPI document the build generates (web/src/api/openapi.d.ts,
 * shared with the dashboard), so a renamed or retyped field breaks the CLI's compile instead of its users.
 */
import type { paths } from '../../web/src/api/openapi';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

/** The JSON body a route accepts. */
export type Body<P extends keyof paths, M extends Method = 'post'> = Op<P, M> extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
/** The JSON a route answers with (every JSON route in the document describes it). */
export type Reply<P extends keyof paths, M extends Method = 'get'> = Op<P, M> extends { responses: { 200: { content: { 'application/json': infer R } } } } ? R : never;
/** A route's query parameters. */
export type Query<P extends keyof paths, M extends Method = 'get'> = Op<P, M> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
