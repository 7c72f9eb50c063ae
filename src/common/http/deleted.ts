import { z } from 'zod';

/** OpenAI's answer to deleting an object with an id: `{id, object, deleted: true}` (a deleted thing always is). */
export const deletedOf = <T extends string>(object: T) => z.object({ id: z.string(), object: z.literal(object), deleted: z.literal(true) });
