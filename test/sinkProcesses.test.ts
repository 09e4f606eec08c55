/**
 * Sink consumers in separate processes, killed with real signals (kill -9),
 * on a private redis-server, with both clients. An oracle records what the
 * producer added and what each process received and acked.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, take, uniqueName, waitFor } from './support/clients.js';
import { type Consumer, GRACE, setup, useCompiledLibrary, WAIT } from './support/consumerProcesses.js';

useCompiledLibrary();

// The two clients' suites run at once (each test has its own redis-server and children; most of
// a test is waiting for a grace period or a sweep), their tests one at a time: the file kept a
// worker ~27 s, one suite after the other.
describe.concurrent.each(CLIENT_KINDS)('sink consumer processes (%s)', (kind) => {
  it.sequential('three processes, one killed with SIGKILL mid-batch: every event handled, nothing pending, dead consumer leaves', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream;
    // The consumers create the group (startAt oldest) before any event is added.
    const kids = await Promise.all([0, 1, 2].map(() => env.start({ ackDelayMs: 200 })));
    const added: string[] = [];
    let victim: Consumer | undefined;
    let unackedAtKill: string[] = [];
    // Acked in Redis by the victim, which was killed before it could print so.
    let ackedUnseen: string[] = [];
    const receivedIds = () => new Set(kids.flatMap((k) => k.received.map((m) => m.id as string)));
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 30; i++) added.push((await s.add('event', `b${batch}-${i}`)) as string);
      await waitFor(() => receivedIds().size >= added.length, { ...WAIT, what: `batch ${batch} received` });
      if (!victim && added.length >= 90) {
        // Kill the process holding the most received-but-unacked events.
        const candidate = [...kids].sort((a, b) => b.unacked.length - a.unacked.length)[0] as Consumer;
        // Killed only while it holds events in Redis: under load its output lags its acks (200 ms
        // after each event), and checking first, then killing, let two CI runs kill one whose
        // events were all acked in between. Frozen, it acks nothing more; a round trip on the
        // test's connection lets Redis run the acks it had sent before it stopped.
        if (candidate.unacked.length > 0) {
          await candidate.freeze();
          await env.c.cmd('PING');
          const pel = (await env.c.cmd('XPENDING', s.key, 'sink', '-', '+', 1000)) as unknown[][];
          // Pending with it when it died (received perhaps before it printed so): each must be redelivered.
          const held = pel.filter((e) => String(e[1]) === candidate.consumer).map((e) => String(e[0]));
          if (held.length === 0) candidate.resume();
          else {
            await candidate.kill('SIGKILL');
            victim = candidate;
            unackedAtKill = held;
            // An XACK it sent may have run before it could print the ack: the group's pending
            // list says which of its events are still unacked (pending with it, or claimed).
            const pending = new Set(pel.map((e) => String(e[0])));
            ackedUnseen = candidate.unacked.filter((id) => !pending.has(id));
          }
        }
      }
    }
    expect(victim).toBeDefined();
    expect(unackedAtKill.length).toBeGreaterThan(0);
    const survivors = kids.filter((k) => k !== victim);
    const allAcked = () => new Set([...ackedUnseen, ...kids.flatMap((k) => [...k.acked])]);
    // Under the test's own 30 s, so that a stall names the step it stalled in.
    await waitFor(() => added.every((id) => allAcked().has(id)), { timeout: 25_000, what: 'all 300 events acked' });
    await waitFor(async () => (await env.pending(s.key)) === 0, { ...WAIT, what: 'nothing pending' });
    await waitFor(async () => !(await env.consumers(s.key)).includes(victim?.consumer as string), {
      ...WAIT,
      what: 'killed consumer removed from the group',
    });
    expect(await env.score(s.key, victim?.consumer as string)).toBeUndefined();

    // Oracle: nothing lost, nothing unexpected, duplicates only as redeliveries.
    const all = kids.flatMap((k) => k.received);
    const addedSet = new Set(added);
    expect(all.filter((m) => !addedSet.has(m.id as string))).toEqual([]);
    const firsts = all.filter((m) => m.n === 1).map((m) => m.id);
    expect(new Set(firsts).size).toBe(firsts.length);
    for (const id of unackedAtKill) {
      expect(survivors.some((k) => k.received.some((m) => m.id === id && (m.n ?? 0) >= 2))).toBe(true);
    }
    expect(kids.flatMap((k) => k.errors)).toEqual([]);
    await Promise.all(survivors.map((k) => k.kill('SIGTERM')));
  });

  it.sequential('a consumer killed with kill -9: a live instance reading 200 streams gets its events within 2 x grace (issue 20)', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream;
    // Long enough that a loaded machine (the suite runs two files at a time on 2 cores) still
    // redelivers in 1.5 grace periods; short next to the backstop (10 grace periods at least).
    const grace = 2000;
    // The survivor, in this process, reads the victim's stream and 199 others. Idle, it sweeps
    // none of them on a timer: only the victim going stale makes it look (sinkMaintenance.ts).
    const survivor = await new Stream(s.name, env.c.redis).newSink('sink', {
      ackGracePeriodMs: grace,
      blockMs: 100,
      startAt: 'oldest',
    });
    ctx.onTestFinished(() => survivor.close());
    for (let i = 0; i < 199; i++) await survivor.addStream(new Stream(uniqueName('other'), env.c.redis));
    const got: Array<{ id: string; n: number; at: number }> = [];
    void (async () => {
      for await (const ev of survivor) {
        got.push({ id: ev.id, n: ev.deliveryCount, at: performance.now() });
        await ev.ack();
      }
    })();
    const victim = await env.start({ ackDelayMs: -1, graceMs: grace });
    // Events one at a time until the victim holds a few (the survivor acks the ones it reads).
    while (victim.received.length < 3) {
      const id = (await s.add('event', 'x')) as string;
      await waitFor(() => victim.received.some((m) => m.id === id) || got.some((g) => g.id === id), WAIT);
    }
    await victim.kill('SIGKILL');
    const killedAt = performance.now();
    const theirs = victim.received.map((m) => m.id as string);
    await waitFor(() => theirs.every((id) => got.some((g) => g.id === id && g.n === 2)), {
      ...WAIT,
      what: "the victim's events redelivered",
    });
    const last = Math.max(...theirs.map((id) => (got.find((g) => g.id === id && g.n === 2)?.at ?? 0) - killedAt));
    // Stale a grace period after its last liveness beat (at most grace / 2 before the kill), idle a
    // grace period after its read: found by the survivor's next sweep, within 1.5 grace periods.
    expect(last, `redelivered ${last.toFixed(0)} ms after the kill`).toBeLessThan(2 * grace);
    await waitFor(async () => !(await env.consumers(s.key)).includes(victim.consumer as string), {
      ...WAIT,
      what: 'dead consumer removed',
    });
  }, 30_000);

  it.sequential('a consumer killed with kill -9 after reading N events, restarted after 2 x grace, loses none of them', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream;
    const first = await env.start({ ackDelayMs: -1 });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await s.add('event', `p${i}`)) as string);
    await waitFor(() => first.received.length >= 20, { ...WAIT, what: '20 events read' });
    await first.kill('SIGKILL');
    const dead = first.consumer as string;
    expect(await env.pending(s.key)).toBe(20);
    // Silent for more than 2 x grace: stale, yet owning 20 pending events.
    await waitFor(async () => (await env.time()) - ((await env.score(s.key, dead)) ?? 0) > 2 * GRACE + 50, {
      ...WAIT,
      what: 'dead consumer stale',
    });
    const restarted = await env.start({ ackDelayMs: 0 });
    await waitFor(() => ids.every((id) => restarted.acked.has(id)), { ...WAIT, what: 'all 20 events handled again' });
    expect(restarted.received.filter((m) => ids.includes(m.id as string)).every((m) => (m.n ?? 0) >= 2)).toBe(true);
    await waitFor(async () => (await env.pending(s.key)) === 0, WAIT);
    await waitFor(async () => !(await env.consumers(s.key)).includes(dead), { ...WAIT, what: 'dead consumer removed' });
    expect(restarted.errors).toEqual([]);
    await restarted.kill('SIGTERM');
  });

  it.sequential('a consumer frozen (SIGSTOP) in a blocking read does not hand out, after SIGCONT, what the read took and another consumer took over', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream;
    // A long block: the frozen consumer is surely inside its blocking read when the event comes.
    const frozen = await env.start({ ackDelayMs: 0, blockMs: 5000 });
    const warm = (await s.add('event', 'warm-up')) as string;
    await waitFor(() => frozen.acked.has(warm), { ...WAIT, what: 'warm-up event handled' });
    // Back in its blocking read, its loop waiting for the next event: Redis shows its read
    // connection blocked (flag b) in XREADGROUP. Only this consumer is on this server.
    await waitFor(
      async () =>
        String(await env.c.cmd('CLIENT', 'LIST'))
          .split('\n')
          .some((l) => l.includes(' name=pulse:sink:sink:read ') && / flags=\w*b/.test(l) && l.includes(' cmd=xreadgroup')),
      { ...WAIT, what: 'the consumer blocked in its read' },
    );
    frozen.proc.kill('SIGSTOP');
    try {
      const id = (await s.add('event', 'taken')) as string;
      // Redis answers the frozen consumer's read: the event is its own, the reply waits in its socket.
      await waitFor(
        async () => {
          const pel = (await env.c.cmd('XPENDING', s.key, 'sink', '-', '+', 10)) as unknown[][];
          return pel.some((e) => String(e[0]) === id && String(e[1]) === frozen.consumer);
        },
        { ...WAIT, what: 'the frozen consumer read the event' },
      );
      // After the grace period another instance takes it over and handles it.
      const other = await s.newSink('sink', { ackGracePeriodMs: GRACE, blockMs: 100, startAt: 'oldest' });
      try {
        const sub = other.subscribe();
        const [ev] = await take(sub, 1, WAIT.timeout);
        expect(ev?.id).toBe(id);
        expect(ev?.deliveryCount).toBe(2);
        await ev?.ack();
      } finally {
        await other.close();
      }
      frozen.proc.kill('SIGCONT');
      // A later event reaches the resumed consumer: anything stale it would hand out comes before it.
      const later = (await s.add('event', 'later')) as string;
      await waitFor(() => frozen.acked.has(later), { ...WAIT, what: 'the resumed consumer handles a new event' });
      expect(frozen.received.map((m) => m.id)).not.toContain(id);
      expect(frozen.errors).toEqual([]);
    } finally {
      frozen.proc.kill('SIGCONT');
    }
    await frozen.kill('SIGTERM');
  });

  it.sequential('a consumer whose host clock is an hour ahead does not make others stale (Go defect 4)', async (ctx) => {
    const env = await setup(ctx, kind);
    const s = env.stream;
    // A longer grace here: a consumer starved of CPU for 2 x grace on a loaded machine is rightly stale,
    // while the skew (an hour) would make it stale at any grace.
    const grace = 1000;
    const ahead = await env.start({ ackDelayMs: 0, clockSkewMs: 3_600_000, graceMs: grace });
    // Make sure the skewed process holds the lease: it runs the stale-consumer cleanup.
    await waitFor(async () => (await env.c.cmd('GET', `{${s.key}}:sink:sink:lease`)) === ahead.consumer, {
      ...WAIT,
      what: 'skewed consumer holds the lease',
    });
    const normal = await env.start({ ackDelayMs: 0, graceMs: grace });
    // Redis makes an instance a group consumer only once it has received an event: add events
    // one at a time until the normal one has got one, so that its removal would show.
    const ids: string[] = [];
    const acked = () => new Set([...ahead.acked, ...normal.acked]);
    while (normal.received.length === 0 && ids.length < 200) {
      ids.push((await s.add('event', `p${ids.length}`)) as string);
      await waitFor(() => acked().has(ids[ids.length - 1] as string), WAIT);
    }
    expect(normal.received.length).toBeGreaterThan(0);
    expect(await env.consumers(s.key)).toContain(normal.consumer);
    // About 10 cleanup rounds (every grace / 4): both stay members with fresh, server-time keep-alives.
    const deadline = Date.now() + 2.5 * grace;
    while (Date.now() < deadline) {
      const names = await env.consumers(s.key);
      expect(names).toContain(normal.consumer);
      const now = await env.time();
      for (const k of [ahead, normal]) {
        const score = await env.beat(k.consumer as string);
        expect(score).toBeDefined();
        expect(Math.abs(now - (score ?? 0))).toBeLessThan(2 * grace);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect([...ahead.received, ...normal.received].every((m) => m.n === 1)).toBe(true);
    expect([...ahead.errors, ...normal.errors]).toEqual([]);
    await Promise.all([ahead.kill('SIGTERM'), normal.kill('SIGTERM')]);
  });
});
