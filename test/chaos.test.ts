/**
 * The short fault-injection run: every scenario of chaos/scenarios.ts at
 * small sizes (a few seconds each), with child processes, real signals and
 * private redis-server processes. `npm run chaos` runs the full sizes.
 */
import { describe, expect, it } from 'vitest';
import { runScenario, type ScenarioDef } from '../chaos/run.js';
import { CONTRACT_SCENARIOS, SCENARIOS } from '../chaos/scenarios.js';

const scenarioTest = (s: ScenarioDef) => async () => {
  const r = await runScenario(s, 'short');
  const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  expect(failed, `${s.name}: ${r.notes.join('; ')}`).toEqual([]);
};

describe('chaos (short run)', () => {
  for (const s of SCENARIOS) it(`${s.name}: ${s.title}`, { timeout: s.limitMs.short + 30_000 }, scenarioTest(s));
});

// One after another: side by side, their worker processes starved the timing-sensitive tests of other files on two cores.
describe('chaos (short run): the delivery contract of issue 13', () => {
  for (const s of CONTRACT_SCENARIOS) it(`${s.name}: ${s.title}`, { timeout: s.limitMs.short + 30_000 }, scenarioTest(s));
});
