import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest start first: on a fresh clone vitest has no
 * timings and starts larger files first, which left the long ones (the short
 * chaos run, in `npm test` until 2026-12-06) as a tail after everything
 * else. The idle and failover files mostly wait (command rates over seconds, a replica's
 * promotion): started late they were the tail (idle 25 s, clusterFailover 15 s
 * after the rest had ended); started early they wait beside the busy ones. So do the files that
 * compile or pack the package (package, optionTypes, errorsAcrossBuilds: seconds of CPU each).
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
  'optionTypes',
  'errorsAcrossBuilds',
  'sinkFaults',
  'reader',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const i = LONGEST.findIndex((name) => f.moduleId.endsWith(`/test/${name}.test.ts`));
      return i >= 0 ? i : LONGEST.length;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

// Node 20 parses NODE_EXTRA_CA_CERTS (set on machines behind a TLS proxy, as this project's) at the
// start of every process: 50-70 ms of CPU each, for the test workers and the ~290 node children the
// tests start (the CLI, consumer processes). The tests talk to loopback servers only, and the TLS
// tests pass their own CA: the workers, which inherit this process's environment, go without it.
delete process.env.NODE_EXTRA_CA_CERTS;

export default defineConfig({
  test: {
    globalSetup: ['test/support/globalSetup.ts'],
    // PULSE_CPU_PROBE=<file>: the CPU of each test file, appended to <file> (test/support/cpuProbe.ts).
    // afterFile: what a file enabled for its whole worker (OpenTelemetry's context manager) is undone.
    setupFiles: ['test/support/afterFile.ts', ...(process.env.PULSE_CPU_PROBE ? ['test/support/cpuProbe.ts'] : [])],
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
    // Files share a module graph per worker (isolate: false): importing the library, both clients
    // and vitest again for each of 180 files cost 170 s of CPU on two cores (vitest 196 s in all,
    // over the 3-minute budget; 139 s shared). Each file starts its own servers and cleans up its
    // own streams, sinks and listeners, and undoes what it sets for the whole process (internal
    // limits lowered for one file, OpenTelemetry's globals; its context manager: afterFile.ts).
    // Those files once ran in projects of their own, isolated or sharing among themselves, which
    // vitest starts as a group once the other files' workers have ended: 15 s at the end of the run
    // with few workers busy (176-179 s in all, 2026-12-07).
    isolate: false,
    include: ['test/**/*.test.ts'],
  },
});
