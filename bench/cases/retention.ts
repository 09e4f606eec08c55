/**
 * What `retention: 'interest'` costs publishing, against 'limits' in the
 * same run: the same stream settings (maxLen 1000, the default) and the same
 * sink state on both sides. The sink keeps up: after every window its group
 * is moved to the stream's end (`XGROUP SETID ... $`, as if it had read and
 * acked everything), so trimming has work to do and the trim point is near
 * the end, as in a healthy deployment.
 */
import { type Retention, Stream } from '../../packages/pulse-streaming/src/index.js';
import { EVENT_NAME } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

const MAX_LEN = 1000;
const SINK = 'keeps-up';

/** A stream of `retention` with a sink that has read everything so far. */
async function streamWithSink(ctx: CaseContext, retention: Retention): Promise<Stream> {
  const stream = new Stream(uniqueName(`retention-${retention}`), ctx.client.redis, { maxLen: MAX_LEN, retention });
  await ctx.client.send(['XGROUP', 'CREATE', stream.key, SINK, '$', 'MKSTREAM']);
  return stream;
}

const caughtUp = (ctx: CaseContext, stream: Stream) => ctx.client.send(['XGROUP', 'SETID', stream.key, SINK, '$']);

/** Events per second of `publish` on a fresh stream of `retention`; the server is emptied after. */
async function measure(
  ctx: CaseContext,
  retention: Retention,
  events: number,
  publish: (stream: Stream) => Promise<void>,
): Promise<number> {
  const stream = await streamWithSink(ctx, retention);
  try {
    const t0 = performance.now();
    await withDeadline(publish(stream), deadlineFor(events), `${retention} publish`);
    return rate(events, performance.now() - t0);
  } finally {
    await flush(ctx.client);
  }
}

/** `window` adds in flight (merged into script calls on both sides), the sink caught up after each window. */
async function inFlight(ctx: CaseContext, stream: Stream, events: number): Promise<void> {
  const { window } = ctx.options;
  for (let sent = 0; sent < events; sent += window) {
    const size = Math.min(window, events - sent);
    await Promise.all(Array.from({ length: size }, () => stream.add(EVENT_NAME, ctx.payload)));
    await caughtUp(ctx, stream);
  }
}

/** Awaited adds (plain XADDs; under 'interest' one in 50 is a script call that trims), the sink caught up every 100. */
async function oneAtATime(ctx: CaseContext, stream: Stream, events: number): Promise<void> {
  for (let i = 0; i < events; i++) {
    await stream.add(EVENT_NAME, ctx.payload);
    if (i % 100 === 99) await caughtUp(ctx, stream);
  }
}

export async function retentionCases(ctx: CaseContext): Promise<ThroughputResult[]> {
  const { events, runs, oneAtATimeEvents, warmupEvents } = ctx.options;
  const baselineName = "retention 'limits' (maxLen 1000, same sink state)";
  const cases = [
    {
      case: 'publish-interest' as const,
      title: `publish with retention 'interest', ${ctx.options.window} in flight`,
      events,
      publish: (s: Stream, n: number) => inFlight(ctx, s, n),
    },
    {
      case: 'publish-one-interest' as const,
      title: "publish with retention 'interest', one at a time",
      events: oneAtATimeEvents,
      publish: (s: Stream, n: number) => oneAtATime(ctx, s, n),
    },
  ];
  const out: ThroughputResult[] = [];
  for (const c of cases) {
    const warmup = Math.min(c.events, warmupEvents / 5);
    for (const retention of ['interest', 'limits'] as const) await measure(ctx, retention, warmup, (s) => c.publish(s, warmup));
    const m = await alternate(
      runs,
      () => measure(ctx, 'interest', c.events, (s) => c.publish(s, c.events)),
      () => measure(ctx, 'limits', c.events, (s) => c.publish(s, c.events)),
    );
    out.push(throughputResult(ctx, { case: c.case, title: c.title, baselineName, events: c.events }, m));
  }
  return out;
}
