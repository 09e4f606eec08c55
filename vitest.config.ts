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
    // Two cores, yet six files at a time: most files mostly wait (grace periods, blocking reads,
    // idle command rates over seconds), and with four the files other than the short chaos run
    // (about 100 s in one worker) took the other three workers 170 s, over the 3-minute budget.
    // Tests whose timing a loaded machine can starve use grace periods of a second or more.
    maxWorkers: 6,
    sequence: { sequencer: LongestFirst },
  },
});
