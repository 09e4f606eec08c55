/**
 * The frame of the Go interop tests: builds the Go program for every pinned
 * Go Pulse version (once, cached), then runs the tests of `body` per version
 * and per Node client. A version that cannot be had (no Go toolchain, the
 * module proxy refuses it) is a skipped suite with the reason in its title
 * and in a warning; a version that does not compile is a failed test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS, type ClientKind, connect, sharedUrl, type TestClient, uniqueName } from './clients.js';
import { type GoLine, type GoVersion, prepareGoInterop, runGo } from './goInterop.js';

/** What a test of one version and one client works with. */
export interface GoSuite {
  /** The Go program built for this version. */
  readonly bin: string;
  /** This version keeps Go v1.10's stream lifecycle record (see `GoTraits`). */
  readonly lifecycle: boolean;
  readonly kind: ClientKind;
  /** A client of the shared test Redis (set before the tests run). */
  readonly c: TestClient;
  /** The Go program's flags for stream `name` on the shared Redis (or `redisUrl`). */
  on(name: string, redisUrl?: string): string[];
  /**
   * Opens the stream from Go (a sink that reads nothing): Go v1.10 readers
   * refuse a stream no Go producer or sink has opened (a test shows it), as
   * a Go service in production would have.
   */
  goOpen(name: string): Promise<GoLine[]>;
}

/** A refused download is the machine's limit, not ours: skip with the reason. A compile error is ours: fail. */
const UNAVAILABLE = /403|404|410|not available|dial tcp|no such host|i\/o timeout|connection refused|proxy|TLS handshake/i;

/** Registers `body`'s tests once per pinned Go Pulse version and Node client. */
export async function describeGoVersions(body: (g: GoSuite) => void): Promise<void> {
  const prep = await prepareGoInterop();
  const targets: GoVersion[] =
    prep.go === undefined ? [{ label: 'any version', ok: false, reason: prep.reason ?? 'no Go' }] : prep.versions;
  for (const v of targets) if (!v.ok) console.warn(`[interop] Go Pulse ${v.label} not tested: ${v.reason}`);

  // The reason in a skipped suite's title, short enough to read (the full one is logged above).
  const why = (reason: string, label: string): string => {
    if (prep.go === undefined) return reason;
    if (/403|404|410|not available/i.test(reason)) return `the Go module proxy does not serve goa.design/pulse@${label}`;
    return `the Go module proxy could not be reached (${reason.slice(0, 120)})`;
  };

  it('pins at least one Go Pulse version', () => {
    if (prep.go !== undefined) expect(prep.versions.length).toBeGreaterThan(0);
  });

  for (const v of targets) {
    if (!v.ok && prep.go !== undefined && !UNAVAILABLE.test(v.reason)) {
      it(`builds the interop program for Go Pulse ${v.label}`, () => {
        throw new Error(v.reason);
      });
      continue;
    }
    const title = v.ok ? `Go Pulse ${v.label}` : `Go Pulse ${v.label} (SKIPPED: ${why(v.reason, v.label)})`;
    describe.skipIf(!v.ok)(title, () => {
      describe.each(CLIENT_KINDS)('with %s', (kind) => {
        let client: TestClient | undefined;
        let url = '';
        beforeAll(async () => {
          client = await connect(kind);
          url = sharedUrl();
        });
        afterAll(() => client?.close());
        const g: GoSuite = {
          bin: v.ok ? v.bin : '',
          lifecycle: v.ok && v.traits.lifecycle,
          kind,
          get c(): TestClient {
            if (!client) throw new Error('no client before beforeAll');
            return client;
          },
          on: (name, redisUrl = url) => ['-redis', redisUrl, '-stream', name, '-timeout-ms', '20000'],
          goOpen: (name) => runGo(g.bin, ['sink', ...g.on(name), '-sink', uniqueName('go-open'), '-count', '0']),
        };
        body(g);
      });
    });
  }
}
