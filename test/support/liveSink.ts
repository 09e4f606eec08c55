/**
 * The live sink of the fatalTransient*.test.ts files: transient server
 * conditions must not end a healthy sink.
 */
import { expect } from 'vitest';
import { type SinkEvent, Stream } from '../../packages/pulse-streaming/src/index.js';
import { waitFor, within } from './clients.js';
import type { env } from './fatalEnv.js';

const BLOCK = 100;
const GRACE = 400;

type Env = Awaited<ReturnType<typeof env>>;

/**
 * A sink with a short grace period running process() over events of which every third fails its
 * first delivery (sweeps, claims, holds, nacks and liveness all run); `healthy(what)` checks it
 * still handles new events and logged nothing like "sink stopped".
 */
export async function liveSink(e: Env, streamOptions: Record<string, unknown> = {}) {
  const s = new Stream(e.name, e.admin.redis, { logger: e.logger, ...streamOptions });
  const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE, maxDeliveries: 50, startAt: 'oldest' });
  const handled = new Map<string, number>();
  const run = sink.process(
    async (ev: SinkEvent) => {
      handled.set(ev.text(), (handled.get(ev.text()) ?? 0) + 1);
      // Every third event fails its first delivery: nacks and claims keep running.
      if (ev.deliveryCount === 1 && Number(ev.text().split('-')[1]) % 3 === 0) throw new Error('first try fails');
    },
    { retry: false, concurrency: 4 },
  );
  const runOutcome = run.then(
    () => 'resolved',
    (err: unknown) => `rejected: ${String(err)}`,
  );
  let seq = 0;
  const addSome = async (n: number, tag: string): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = `${tag}-${seq++}`;
      await s.add('e', p);
      out.push(p);
    }
    return out;
  };
  const healthy = async (what: string) => {
    const later = await addSome(10, `after-${what}`);
    await waitFor(() => later.every((p) => handled.has(p)), { timeout: 15_000, what: `events after ${what} handled` });
    const stopped = e.lines.filter((l) => /stopped/.test(String(l.msg)) || l.level === 'error');
    expect({ closed: sink.isClosed(), stopped: stopped.map((l) => [l.msg, JSON.stringify(l.obj).slice(0, 300)]) }).toEqual({
      closed: false,
      stopped: [],
    });
  };
  e.defer(async () => {
    await within(sink.close(), 8000, 'close');
    await within(run, 8000, 'process');
  });
  return { s, sink, handled, addSome, healthy, runOutcome };
}
