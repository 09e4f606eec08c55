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
  'clusterDeadLetterOnce',
  'readerIdleCost',
  'deadLetterReplay',
  'readerLoss',
  'clusterFailover',
  'clusterFailoverReads',
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

/**
 * Files that change what a whole process shares: OpenTelemetry's globals and
 * the library's process-wide registrations, process-level error listeners,
 * environment variables, internal limits set for one file. They run each in a
 * fresh module graph, as vitest does by default.
 */
const ISOLATED = [
  'test/otel*.test.ts',
  'test/auditOtelSampler.test.ts',
  'test/headersCluster.test.ts',
  'test/loggerThrows.test.ts',
  'test/package.test.ts',
  'test/schemaHang.test.ts',
  'test/dashboardHeaders.test.ts',
  'test/handlerThrowsAnything.test.ts',
  'test/goDestroyProducerOnly.test.ts',
  'test/errorsAcrossBuilds.test.ts',
  'test/optionTypes.test.ts',
  'test/heldGoneNacked.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/support/globalSetup.ts'],
    // PULSE_CPU_PROBE=<file>: the CPU of each test file, appended to <file> (test/support/cpuProbe.ts).
    setupFiles: process.env.PULSE_CPU_PROBE ? ['test/support/cpuProbe.ts'] : [],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores, yet six files at a time: most files mostly wait (grace periods, blocking reads,
    // idle command rates over seconds), and with four the files other than the short chaos run
    // (about 120 s in one worker) took the other three workers 170 s, over the 3-minute budget.
    // Seven took vitest from 178 s to 163 s, but two of three clean-clone CI runs then failed two
    // timing-sensitive files each (a different pair every time: a host starved further); eight,
    // 158 s and two failures in one local run. The 10 s of the build are saved when nothing
    // changed since the last build instead (scripts/build-stamp.mjs).
    // Tests whose timing a loaded machine can starve use grace periods of a second or more.
    maxWorkers: 6,
    sequence: { sequencer: LongestFirst },
    // The other files share a module graph per worker (isolate: false): importing the library,
    // both clients and vitest again for each of 180 files cost 170 s of CPU on two cores (vitest
    // 196 s in all, over the 3-minute budget; 139 s shared). Each file still starts its own
    // servers and cleans up its own streams, sinks and listeners.
    projects: [
      { extends: true, test: { name: 'isolated', include: ISOLATED, isolate: true } },
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: ISOLATED, isolate: false } },
    ],
  },
});
