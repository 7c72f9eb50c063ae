/**
 * A plain table for people; --json prints the API objects instead. The columns are fields of the rows' type (the
 * generated API types), so a renamed field fails the compile rather than printing a column of dashes.
 */
export function table<R extends object>(rows: readonly R[], columns: (keyof R & string)[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const at = (r: R, c: keyof R & string) => cell(r[c]);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => at(r, c).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => at(r, c))))].join('\n');
}

export interface Result {
  /** What --json prints. */
  json: unknown;
  /** What a person reads. */
  text: string;
  exitCode?: number;
}
