/**
 * The mixed-fault soak, run by `npm run chaos -- --soak --minutes N`
 * (chaos/main.mjs sets CHAOS_SOAK_MINUTES; skipped without it). Prints the
 * table of every invariant, also written to `$TMPDIR/pulse-chaos-soak.md`,
 * and fails when an invariant that must be 0 is not.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSoak } from './soak.js';

const minutes = Number(process.env.CHAOS_SOAK_MINUTES ?? 0);
const rate = process.env.CHAOS_SOAK_RATE ? Number(process.env.CHAOS_SOAK_RATE) : undefined;

describe.skipIf(!(minutes > 0))('chaos soak', () => {
  it(`${minutes} minutes of mixed faults`, { timeout: minutes * 60_000 + 1_800_000 }, async () => {
    const r = await runSoak(rate === undefined ? { minutes } : { minutes, rate });
    const file = join(tmpdir(), 'pulse-chaos-soak.md');
    writeFileSync(file, `${r.text}\n`);
    console.log(`\n${r.text}\nwritten to ${file}`);
    expect(r.failed).toEqual([]);
  });
});
