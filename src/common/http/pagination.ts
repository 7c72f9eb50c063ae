import { z } from 'zod';

/** OpenAI-style cursor pagination: `?after=<last id>&limit=N`, answered with `has_more`. */
export const pageQuery = z.object({
  after: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});
export type PageQuery = z.infer<typeof pageQuery>;

/** The response schema of a list route, for the OpenAPI document (the shape `toPage` builds). */
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ object: z.literal('list'), data: z.array(item), has_more: z.boolean(), first_id: z.string().nullable(), last_id: z.string().nullable() });

/** The response schema of a list route that answers everything at once (`toList`): no cursor, `has_more` false. */
export const listOf = <T extends z.ZodType>(item: T) => z.object({ object: z.literal('list'), data: z.array(item), has_more: z.boolean() });

/** A whole list as one page. */
export function toList<T>(data: T[]): { object: 'list'; data: T[]; has_more: boolean } {
  return { object: 'list', data, has_more: false };
}

export interface ListPage<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** Takes `limit + 1` rows fetched by the caller and turns them into a page. */
export function toPage<R, T extends { id: string }>(rows: R[], limit: number, map: (row: R) => T): ListPage<T> {
  const data = rows.slice(0, limit).map(map);
  return {
    object: 'list',
    data,
    has_more: rows.length > limit,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
  };
}

/**
 * The rows after `cursor` in a list ordered by (createdAt, id), newest first unless `order` is 'asc': the `where`
 * clause of a keyset page (ids break ties between rows created in the same millisecond).
 */
export function afterRow(cursor: { createdAt: Date; id: string }, order: 'asc' | 'desc' = 'desc') {
  const cmp = order === 'asc' ? 'gt' : 'lt';
  return { OR: [{ createdAt: { [cmp]: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { [cmp]: cursor.id } }] };
}
