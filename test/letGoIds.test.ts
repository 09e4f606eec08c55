/**
 * Outside review Y (defect 5; line numbers as of commit 541462f).
 * With a logger, the let-go line gives the IDs of only the first five
 * events it says lost; the rest ("and N more") are named nowhere, although the commit and the
 * README promise "how many, with their IDs" and every counted loss logs all its IDs.
 *
 * Mechanism: `rolledBackTo` (packages/pulse-streaming/src/internal/sinkRollback.ts:127-133) puts
 * `idList(letGone)` (:182-185: the first five, then "and N more") in the message text and calls
 * `host.maybeLost(name, text)`, whose `LossReport.unknown` logs only `{ stream }` as fields
 * (lossReport.ts:89-92). Counted losses pass `{ stream, ids }` (sinkHolds.ts:398-401), so a user
 * can replay them; for these, an operator who must replay the events Redis lost cannot know
 * which they were beyond the first five (and IDs are all the instance has: nothing else
 * remembers them after the rollback).
 *
 * What the user sees: "8 event(s) this instance read and let go of unhandled ... (id1, id2, id3,
 * id4, id5 and 3 more)", fields `{ stream }`.
 *
 * Failed for me: every run, both client kinds (3 of 3 each).
 *
 * Suggested fix: pass the IDs as a field (`{ stream, ids: letGone }`, as `countLost` does; a
 * `LossReport.unknown` with fields), keeping the short list in the text.
 *
 * Fixed: the line carries every ID in its `ids` field (the text names the first five).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS, type ClientKind, take, waitFor } from './support/clients.js';
import { privateSink } from './support/privateSink.js';

const N = 8;

async function run(ctx: TestContext, kind: ClientKind) {
  const { server, c, lines, s, sink, iter } = await privateSink(ctx, kind, 'revy-ids');
  await s.add('e', 'a0');
  const [a0] = await take(iter, 1);
  await a0?.ack();
  await c.cmd('SAVE');
  const ids: string[] = [];
  for (let i = 0; i < N; i++) ids.push(await s.add('e', `b${i}`));
  for (const ev of await take(iter, N)) await ev.nack({ delayMs: 60_000 });
  await iter.return?.();
  await server.kill();
  await server.restart();
  await waitFor(() => c.cmd('XLEN', s.key).catch(() => undefined), { timeout: 10_000, what: 'Redis back' });
  await waitFor(() => s.add('e', 'n0').catch(() => undefined), { what: 'add n0 after the restart' });
  const again = sink[Symbol.asyncIterator]();
  const [n0] = await take(again, 1, 10_000);
  await n0?.ack();
  await again.return?.();
  const line = await waitFor(() => lines.find((l) => /let go of unhandled/.test(String(l.msg))), {
    timeout: 10_000,
    what: 'the let-go line',
  });
  const text = `${String(line.msg)} ${JSON.stringify(line.obj)}`;
  const missing = ids.filter((id) => !text.includes(id));
  expect(missing, `IDs of events said lost that the line does not give: ${text.slice(0, 600)}`).toEqual([]);
}

describe.concurrent.each(CLIENT_KINDS)('more than five events let go of, then lost (%s)', (kind) => {
  it('the line gives every ID', (ctx) => run(ctx, kind), 40_000);
});
