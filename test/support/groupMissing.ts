/**
 * What the tests of a consumer group destroyed under a running sink (or its
 * key created anew) share: a sink on a private Redis that keeps every write
 * (AOF, fsync always), a background loop that takes and acks every event,
 * and a wait until every event is delivered or counted lost that says, when
 * it times out, what the sink counted and logged.
 */
import type { TestContext } from 'vitest';
import { type Sink, type SinkEvent, Stream, type StreamOptions } from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './clients.js';
import { RedisServer } from './redisServer.js';

export const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

export interface AofSink {
  readonly server: RedisServer;
  readonly c: TestClient;
  readonly s: Stream;
  readonly sink: Sink;
  readonly lines: ReturnType<typeof recordingLogger>['lines'];
}

/** Stream `<prefix>-...` (with `options`) and its sink `g` (grace 1 s, blockMs 100) on a Redis of its own; all stopped after the test. */
export async function aofSink(ctx: TestContext, kind: ClientKind, prefix: string, options: StreamOptions = {}): Promise<AofSink> {
  const server = await RedisServer.start({ args: AOF });
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName(prefix), c.redis, { logger, ...options });
  const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
  ctx.onTestFinished(() => sink.close());
  return { server, c, s, sink, lines };
}

/** Takes every event of `sub` in the background and acks it; returns what it took (`key`: the ID, or another field). */
export function ackAll(sub: AsyncIterable<SinkEvent>, key: (ev: SinkEvent) => string = (ev) => ev.id): Set<string> {
  const got = new Set<string>();
  void (async () => {
    for await (const ev of sub) {
      got.add(key(ev));
      await ev.ack();
    }
  })();
  return got;
}

/** The sink's warn lines, one string (for a failure's message). */
export function warnings(lines: AofSink['lines']): string {
  return lines
    .filter((l) => l.level === 'warn')
    .map((l) => `${l.msg} ${JSON.stringify(l.obj)}`)
    .join(' | ');
}

/** Waits until `delivered() + lost() >= n`; on a timeout, throws with both counts, `detail` and the warn lines. */
export async function untilAccounted(
  n: number,
  delivered: () => number,
  lost: () => number,
  lines: AofSink['lines'],
  detail = '',
): Promise<void> {
  await waitFor(() => delivered() + lost() >= n, { timeout: 8000, what: 'every event delivered or counted lost' }).catch(
    (err: unknown) => {
      throw new Error(`${(err as Error).message}: delivered ${delivered()}, lost ${lost()}${detail}; warn: ${warnings(lines)}`);
    },
  );
}
