/**
 * The full fault-injection run (`npm run chaos`): every scenario at the sizes
 * of issue 4, one after the other, then the results table. Markdown results
 * also go to `$TMPDIR/pulse-chaos-results.md`.
 *
 * CHAOS_ONLY=kill-9,poison runs a subset; CHAOS_PROFILE=short the short sizes.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resultsDetail, resultsTable } from './report.js';
import { type Profile, runScenario, type ScenarioResult } from './run.js';
import { CONTRACT_SCENARIOS, FULL_ONLY, SCENARIOS } from './scenarios.js';

const profile: Profile = process.env.CHAOS_PROFILE === 'short' ? 'short' : 'full';
const only = process.env.CHAOS_ONLY?.split(',').filter(Boolean);
const scenarios = [...SCENARIOS, ...CONTRACT_SCENARIOS, ...FULL_ONLY].filter((s) => !only || only.includes(s.name));
const results: ScenarioResult[] = [];

describe(`chaos (${profile})`, () => {
  afterAll(() => {
    const text = `${resultsTable(results)}\n\n${resultsDetail(results)}`;
    const file = join(tmpdir(), 'pulse-chaos-results.md');
    writeFileSync(file, `${text}\n`);
    console.log(`\n${text}\nwritten to ${file}`);
  });

  for (const s of scenarios) {
    it(`${s.name}: ${s.title}`, { timeout: s.limitMs[profile] + 60_000 }, async () => {
      const r = await runScenario(s, profile);
      results.push(r);
      const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      expect(failed).toEqual([]);
    });
  }
});
