/**
 * removeStream by a stream's last consumer destroys its group (SEMANTICS.md
 * §2, as Go Pulse): a sink reading it again later starts a new group at its
 * startAt, which may hand out again what the old one did ('oldest') or skip
 * what it had not read ('newest'). A CI failure of removeStreamReadInFlight
 * was exactly that (an instance started after the removal handed out an
 * acked event again), and no log line said the group had gone: now a debug
 * line does, on both ways the group goes (at once, or once the events in
 * hand are acked), and not when another consumer keeps it.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS, connect, recordingLogger, take, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const SAID = 'removed the stream: no other consumer, its group is destroyed';

async function setup(ctx: TestContext, kind: (typeof CLIENT_KINDS)[number]) {
  const c = await connect(kind);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const f = sinkFixture(ctx, c, 'rmSaid');
  const a = f.stream({ maxLen: 0, logger });
  const b = f.stream();
  const said = () => lines.filter((l) => l.level === 'debug' && l.msg === SAID).map((l) => (l.obj as { stream?: string }).stream);
  const groups = async () => ((await c.cmd('XINFO', 'GROUPS', b.key)) as unknown[]).length;
  return { f, a, b, said, groups };
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
});
