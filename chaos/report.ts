/** The results table, as Markdown. */
import type { ScenarioResult } from './run.js';

const cell = (s: string | number): string => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function resultsTable(results: ScenarioResult[]): string {
  const head =
    '| scenario | published | handled (unique) | lost | duplicated | unexpected | dead-lettered | reported lost | handled and reported lost | max retries/s | recovery | result |';
  const sep = '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|';
  const rows = results.map((r) => {
    const s = r.summary;
    return `| ${cell(r.name)} | ${s.published} | ${s.handled} | ${r.lost} | ${s.duplicated} | ${s.unexpected} | ${s.deadLettered} | ${r.reportedLost} | ${r.overlap} | ${r.retryMaxPerSec} | ${cell(r.recovery)} | ${r.ok ? 'pass' : 'FAIL'} |`;
  });
  return [head, sep, ...rows].join('\n');
}

export function resultsDetail(results: ScenarioResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`### ${r.name}: ${r.title} (${r.profile}, ${(r.ms / 1000).toFixed(1)} s) ${r.ok ? 'pass' : 'FAIL'}`);
    out.push('');
    for (const c of r.checks) out.push(`- ${c.ok ? 'ok' : '**FAIL**'} ${c.name}: ${cell(c.detail)}`);
    if (r.summary.unconfirmed > 0)
      out.push(`- note: ${r.summary.unconfirmed} handled events came from adds that did not resolve (retried after a fault)`);
    for (const n of r.notes) out.push(`- note: ${cell(n)}`);
    out.push('');
  }
  return out.join('\n');
}
