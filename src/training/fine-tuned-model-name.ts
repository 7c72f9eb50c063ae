/**
 * OpenAI's naming, `ft:{base}:{org}:{suffix}:{id}`, with the project slug as org and the job id's random part as id.
 * Without a suffix the segment stays empty (`ft:tiny-lora:acme::AbC...`), as OpenAI does.
 */
export function fineTunedModelName(base: string, projectSlug: string, suffix: string | null, jobId: string): string {
  return `ft:${base}:${projectSlug}:${suffix ?? ''}:${jobId.replace(/^ftjob-/, '')}`;
}
