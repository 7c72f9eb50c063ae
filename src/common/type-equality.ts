/** True when A and B are the same type (each assignable to the other); compile-time checks of schema vs interface. */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the compile unless T is `true`: `Assert<Same<z.infer<typeof schema>, Interface>>`. */
export type Assert<T extends true> = T;
