import parsePrometheusTextFormat, { PromFamily, PromSample } from 'parse-prometheus-text-format';

/** Scrapes a /metrics URL and parses it with a Prometheus text-format parser (not ours). */
export async function scrape(url: string, token?: string): Promise<PromFamily[]> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusTextFormat(await res.text());
}

export function family(families: PromFamily[], name: string): PromFamily | undefined {
  return families.find((f) => f.name === name);
}

/** The samples of a family whose labels include `labels`. */
export function samples(families: PromFamily[], name: string, labels: Record<string, string> = {}): PromSample[] {
  return (family(families, name)?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
}

/** Sum of the matching samples' values (counters, gauges) or counts (histograms); 0 when none. */
export function total(families: PromFamily[], name: string, labels: Record<string, string> = {}): number {
  return samples(families, name, labels).reduce((s, m) => s + Number(m.value ?? m.count ?? 0), 0);
}
