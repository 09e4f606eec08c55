/**
 * removeStream by a stream's last consumer destroys its group (SEMANTICS.md
 * §2, as Go Pulse): a sink reading it again later starts a new group at its
 * startAt, which may hand out again what the old one did ('oldest') or skip
 * what it had not read ('newest'). A CI failure of removeStreamReadInFlight
 * was exactly that (an instance started after the removal handed out an
 * acked event again), and no log line said the group had gone: now a debug
 * line does, on both ways the group goes (at once, or once the events in
 * hand are acked), and not when another consumer keeps it. What the group
 * had not read goes with it, unread by any instance of the sink: counted
 * lost and said (§4: an event whose group is destroyed is reported lost),
 * where it went without a word.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS, connect, recordingLogger, take, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const SAID = 'removed the stream: no other consumer, its group is destroyed';
const UNREAD = 'events not read when removeStream destroyed the group (no other consumer of the sink)';

async function setup(ctx: TestContext, kind: (typeof CLIENT_KINDS)[number]) {
  const c = await connect(kind);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const f = sinkFixture(ctx, c, 'rmSaid');
  const a = f.stream({ maxLen: 0, logger });
  const b = f.stream();
  const said = () => lines.filter((l) => l.level === 'debug' && l.msg === SAID).map((l) => (l.obj as { stream?: string }).stream);
  const groups = async () => ((await c.cmd('XINFO', 'GROUPS', b.key)) as unknown[]).length;
  const lost = () => lines.filter((l) => l.level === 'warn' && l.msg?.startsWith(UNREAD)).map((l) => ({ msg: l.msg, ...l.obj }));
  return { c, f, a, b, said, groups, lost };
}

describe.concurrent.each(CLIENT_KINDS)('removeStream destroying the group says so (%s)', (kind) => {
  it('nothing pending: destroyed at once, said once with the stream', async (ctx: TestContext) => {
    const { f, a, b, said, groups } = await setup(ctx, kind);
    const sink = await f.sink(a);
    await sink.addStream(b);
    await sink.removeStream(b);
    expect({ groups: await groups(), said: said() }).toEqual({ groups: 0, said: [b.name] });
  });

  it('an event in hand: destroyed once it is acked, said then', async (ctx: TestContext) => {
    const { f, a, b, said, groups } = await setup(ctx, kind);
    const sink = await f.sink(a, { ackGracePeriodMs: 500 });
    await sink.addStream(b);
    await b.add('x', 'y');
    const [ev] = await take(sink.subscribe(), 1);
    await sink.removeStream(b);
    expect({ groups: await groups(), said: said() }).toEqual({ groups: 1, said: [] });
    await ev?.ack();
    await waitFor(() => said().length > 0, { timeout: 10_000, what: 'the destroyed group said' });
    expect({ groups: await groups(), said: said() }).toEqual({ groups: 0, said: [b.name] });
  });

  it('another consumer in the group: kept, nothing said', async (ctx: TestContext) => {
    const { f, a, b, said, groups } = await setup(ctx, kind);
    const sink = await f.sink(a);
    await sink.addStream(b);
    await f.sink(b);
    await sink.removeStream(b);
    expect({ groups: await groups(), said: said() }).toEqual({ groups: 1, said: [] });
  });

  it('events it had not read: counted lost and said, with the stream and how many', async (ctx: TestContext) => {
    const { f, a, b, said, groups, lost } = await setup(ctx, kind);
    const sink = await f.sink(a);
    await sink.addStream(b);
    // No subscriber: nothing is read.
    for (const p of ['1', '2', '3']) await b.add('x', p);
    await sink.removeStream(b);
    expect({ groups: await groups(), said: said(), lost: sink.counters.lost }).toEqual({ groups: 0, said: [b.name], lost: 3 });
    expect(lost()).toEqual([expect.objectContaining({ msg: UNREAD, stream: b.name, count: 3 })]);
  });

  it('unread events Redis cannot count (deleted entries after the position): said, how many unknown', async (ctx: TestContext) => {
    const { c, f, a, b, said, groups, lost } = await setup(ctx, kind);
    const sink = await f.sink(a);
    await sink.addStream(b);
    const ids = [];
    for (const p of ['1', '2', '3']) ids.push(await b.add('x', p));
    // Deleted outside the library: Redis' lag of the group is unknown (nil) from then on.
    await c.cmd('XDEL', b.key, ids[1] as string);
    await sink.removeStream(b);
    expect({ groups: await groups(), said: said(), lost: sink.counters.lost }).toEqual({ groups: 0, said: [b.name], lost: 0 });
    expect(lost()).toEqual([expect.objectContaining({ msg: `${UNREAD}: how many is unknown`, stream: b.name })]);
  });
});
