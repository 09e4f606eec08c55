import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest start first: on a fresh clone vitest has no
 * timings and starts larger files first, which left the long ones (the short
 * chaos run, in `npm test` until 2026-12-06) as a tail after everything
 * else. The idle and failover files mostly wait (command rates over seconds, a replica's
 * promotion): started late they were the tail (idle 25 s, clusterFailover 15 s
 * after the rest had ended); started early they wait beside the busy ones.
 * The isolated files (a fresh process and module graph each) come last: vitest runs them as a
 * group of their own, and in the middle of the run that group left the workers two to five busy
 * for 20 s (197 s in all, 188 s with them last; measured 2026-12-07).
 */
const LONGEST = [
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
      if (i >= 0) return i;
      // The tracing files together (their workers are reused among them only), then the isolated ones.
      return LONGEST.length + (f.project.name === 'otel' ? 1 : f.project.name === 'isolated' ? 2 : 0);
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
/**
 * The tracing files set OpenTelemetry's globals and register the library's
 * integration, each undoing both when it ends: they share module graphs among
 * themselves (a project of their own: vitest never hands its workers a file
 * of another project), not with the rest. Isolated, each of the 16 imported
 * the library, both clients and the SDK again: 26 isolated files took 52 s of
 * CPU, the 10 left and these 46 s (2026-12-07).
 */
const OTEL = ['test/otel*.test.ts', 'test/auditOtelSampler.test.ts'];

const ISOLATED = [
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

// Node 20 parses NODE_EXTRA_CA_CERTS (set on machines behind a TLS proxy, as this project's) at the
// start of every process: 50-70 ms of CPU each, for the test workers and the ~290 node children the
// tests start (the CLI, consumer processes). The tests talk to loopback servers only, and the TLS
// tests pass their own CA: the workers, which inherit this process's environment, go without it.
delete process.env.NODE_EXTRA_CA_CERTS;

export default defineConfig({
  test: {
    globalSetup: ['test/support/globalSetup.ts'],
    // PULSE_CPU_PROBE=<file>: the CPU of each test file, appended to <file> (test/support/cpuProbe.ts).
    setupFiles: process.env.PULSE_CPU_PROBE ? ['test/support/cpuProbe.ts'] : [],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores, yet eight files at a time: most files mostly wait (grace periods, blocking reads,
    // idle command rates over seconds). With the short chaos run in npm test (until 2026-12-06: a
    // fifth of the CPU) the suite was CPU-bound, and seven or eight workers starved timing-sensitive
    // files (two of three clean-clone CI runs failed); six took 225-264 s. Without it the suite used
    // 260 s of CPU in 197 s with six workers (waiting, not computing): eight took 162 s warm and
    // 184-195 s in clean-clone CI runs; ten 140-173 s warm but 187 s in a clean clone (CPU-bound
    // again: transforms and imports of a cold start) with a timing failure in every run. Tests whose timing a loaded machine can starve use grace
    // periods of a second or more; the 10 s of the build are saved when nothing changed since the
    // last build (scripts/build-stamp.mjs).
    maxWorkers: 8,
    sequence: { sequencer: LongestFirst },
    // The other files share a module graph per worker (isolate: false): importing the library,
    // both clients and vitest again for each of 180 files cost 170 s of CPU on two cores (vitest
    // 196 s in all, over the 3-minute budget; 139 s shared). Each file still starts its own
    // servers and cleans up its own streams, sinks and listeners.
    projects: [
      { extends: true, test: { name: 'isolated', include: ISOLATED, isolate: true } },
      { extends: true, test: { name: 'otel', include: OTEL, isolate: false } },
      {
        extends: true,
        test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: [...ISOLATED, ...OTEL], isolate: false },
      },
    ],
  },
});
