/**
 * The short fault-injection run: every scenario of chaos/scenarios.ts at
 * small sizes (a few seconds each), with child processes, real signals and
 * private redis-server processes. `npm run chaos` runs the full sizes.
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../chaos/run.js';
import { SCENARIOS } from '../chaos/scenarios.js';

describe('chaos (short run)', () => {
  for (const s of SCENARIOS) {
    it(`${s.name}: ${s.title}`, { timeout: s.limitMs.short + 30_000 }, async () => {
      const r = await runScenario(s, 'short');
      const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      expect(failed, `${s.name}: ${r.notes.join('; ')}`).toEqual([]);
    });
  }
});
