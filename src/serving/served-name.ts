/**
 * The immutable name a version is loaded under on every replica (vLLM's lora_name) and called by through the
 * gateway: `adapter@vN`. The one place that spells it; `parseServedName` reads it back.
 */
export function servedName(adapter: string, version: number): string {
  return `${adapter}@v${version}`;
}

export function parseServedName(name: string): { adapter: string; version: number } | null {
  const m = /^(.+)@v([1-9][0-9]{0,8})$/.exec(name);
  return m ? { adapter: m[1], version: Number(m[2]) } : null;
}
