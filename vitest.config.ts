import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest start first (the short chaos run alone takes
 * about 90 s): on a fresh clone vitest has no timings and starts larger files
 * first, which left the chaos run as a long tail after everything else. The
 * idle and failover files mostly wait (command rates over seconds, a replica's
 * promotion): started late they were the tail (idle 25 s, clusterFailover 15 s
 * after the rest had ended); started early they wait beside the busy ones.
 */
const LONGEST = [
  'chaos',
  'sinkProcesses',
  'idle',
  'clusterIdle',
  'deadLetterReplay',
  'readerLoss',
  'clusterFailover',
  'interop',
  'package',
  'sinkFaults',
  'reader',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const i = LONGEST.findIndex((name) => f.moduleId.endsWith(`/test/${name}.test.ts`));
      return i < 0 ? LONGEST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: a few files at a time keeps timing-sensitive tests honest. Five, not four: most
    // files mostly wait (grace periods, blocking reads), and with four the files other than the
    // short chaos run (90 s in one worker) took three workers 170 s, over the 3-minute budget.
    maxWorkers: 5,
    sequence: { sequencer: LongestFirst },
  },
});
