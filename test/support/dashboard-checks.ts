import fs from 'node:fs';
import type { Page } from 'playwright-core';

/**
 * axe-core in the page (evaluated over the DevTools protocol, so the page's CSP still holds for its own scripts):
 * the serious and critical violations, as "rule: selectors".
 */
export async function axeSeriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  // A string: the page's DOM types are not in this Node project's typecheck.
  return (await page.evaluate(
    `axe.run(document).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))`,
  )) as string[];
}

/** What a script or onerror payload rendered as markup would leave: window.__pwned, and img/script elements in main. */
export async function payloadTraces(page: Page): Promise<{ pwned: unknown; images: number; scripts: number }> {
  return {
    pwned: await page.evaluate('window.__pwned ?? null'),
    images: await page.locator('main img').count(),
    scripts: await page.locator('main script').count(),
  };
}
