/**
 * The default branch of a switch over a union: a new member that no case handles is a compile error here, and a
 * value from outside the type (an old row, a bad cast) is a loud runtime error instead of a silent fall-through.
 */
export function assertExhaustive(value: never, what = 'value'): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(value)}`);
}
