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

// One retry, still a stopgap: the duplicates it was added for (a consumer frozen by SIGSTOP
// handing out what another had taken over) are fixed (07432ce), but on a loaded host the short
// run still fails now and then on a sink counting events lost that were not (CHAOS.md, "Running
// it"), an open defect. A scenario that fails twice in a row fails the suite.
describe('chaos (short run)', { retry: 1 }, () => {
  for (const s of SCENARIOS) it(`${s.name}: ${s.title}`, { timeout: s.limitMs.short + 30_000 }, scenarioTest(s));
});

// One after another: side by side, their worker processes starved the timing-sensitive tests of other files on two cores.
describe('chaos (short run): the delivery contract of issue 13', { retry: 1 }, () => {
  for (const s of CONTRACT_SCENARIOS) it(`${s.name}: ${s.title}`, { timeout: s.limitMs.short + 30_000 }, scenarioTest(s));
});
