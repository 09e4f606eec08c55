/**
 * Pure unit tests of the internal building blocks, without a server:
 * start-position parsing, entry IDs, topic matching, entry ID and signal
 * validation, backoff, the room claims leave, what a stream's end leaves
 * Redis-lost. Reply parsing and the key
 * layout are in wire.test.ts, Redis errors in redisErrors.test.ts.
 */

import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, PulseError, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { Backoff } from '../packages/pulse-streaming/src/internal/backoff.js';
import { monotonicNow } from '../packages/pulse-streaming/src/internal/clock.js';
import { Fanout } from '../packages/pulse-streaming/src/internal/fanout.js';
import { compareIds, idBefore, idTime, previousId } from '../packages/pulse-streaming/src/internal/ids.js';
import { claimRoom } from '../packages/pulse-streaming/src/internal/sinkClaims.js';
import { goneAfterCheck, rolledBack } from '../packages/pulse-streaming/src/internal/sinkRollback.js';
import { newSinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { parseStart } from '../packages/pulse-streaming/src/internal/start.js';
import { topicMatcher } from '../packages/pulse-streaming/src/internal/topic.js';
import { checkId, checkSignal } from '../packages/pulse-streaming/src/internal/validate.js';
import { waitFor } from './support/clients.js';

describe('compareIds', () => {
  /** The definition: both numbers as bigints (sequences pass 2^53). */
  function byBigints(a: string, b: string): number {
    const parse = (id: string): [bigint, bigint] => {
      const d = id.indexOf('-');
      return d < 0 ? [BigInt(id), 0n] : [BigInt(id.slice(0, d)), BigInt(id.slice(d + 1))];
    };
    const [am, as] = parse(a);
    const [bm, bs] = parse(b);
    if (am !== bm) return am < bm ? -1 : 1;
    if (as !== bs) return as < bs ? -1 : 1;
    return 0;
  }

  it('compares as text only where that agrees with the numbers: lengths, leading zeros, a missing sequence', () => {
    const ids = ['0', '0-0', '0-1', '1', '1-0', '5', '5-0', '9-9', '10-0', '007-1', '7-01', '7-1', '100-0'];
    ids.push('99-18446744073709551615', '18446744073709551615-18446744073709551615', '18446744073709551615-9');
    // One length, the dash at one place (compared natively as text): leading zeros included.
    ids.push('05-1', '10-1', '01', '10', '0-01', '0-10', '00-0', '05-10', '10-05');
    for (let i = 0; i < 300; i++)
      ids.push(`${1_796_565_603_000 + Math.floor(Math.random() * 2000)}-${Math.floor(Math.random() * 12)}`);
    for (const a of ids) for (const b of ids) expect([a, b, compareIds(a, b)]).toEqual([a, b, byBigints(a, b)]);
  });
});

describe('parseStart', () => {
  it("defaults to 'newest'", () => {
    expect(parseStart('startAt', undefined)).toEqual({ kind: 'newest' });
    expect(parseStart('startAt', 'newest')).toEqual({ kind: 'newest' });
  });

  it("'oldest' starts before every entry", () => {
    const s = parseStart('startAt', 'oldest');
    expect(s.kind).toBe('id');
    if (s.kind !== 'id') return;
    expect(compareIds(s.id, '0-1')).toBeLessThan(0);
  });

  it('a Date starts right before its millisecond, so <ms>-0 is included and <ms-1>-max is not', () => {
    const ms = 1_700_000_000_123;
    const s = parseStart('startAt', new Date(ms));
    expect(s).toEqual({ kind: 'id', id: `${ms - 1}-18446744073709551615`, dateMs: ms });
    if (s.kind !== 'id') return;
    // Reading is "after the cursor": <ms>-0 is after it, <ms-1>-anything is not.
    expect(compareIds(`${ms}-0`, s.id)).toBeGreaterThan(0);
    expect(compareIds(`${ms - 1}-5`, s.id)).toBeLessThan(0);
    expect(compareIds(`${ms - 1}-18446744073709551615`, s.id)).toBe(0);
  });

  it('a Date at the epoch starts at the beginning', () => {
    const s = parseStart('startAt', new Date(0));
    expect(s.kind).toBe('id');
    if (s.kind !== 'id') return;
    expect(compareIds(s.id, '0-1')).toBeLessThan(0);
  });

  it('{ after: id } starts after that ID', () => {
    expect(parseStart('startAt', { after: '1700000000000-3' })).toEqual({ kind: 'id', id: '1700000000000-3' });
    // Canonical: Redis reads '0' as 0-0, and the reader's loss ledger compares IDs as text (review AE).
    expect(parseStart('startAt', { after: '0' })).toEqual({ kind: 'id', id: '0-0' });
    expect(parseStart('startAt', { after: '01000' })).toEqual({ kind: 'id', id: '1000-0' });
  });

  it.each([
    ['a number', 42],
    ['null', null],
    ['an unknown string', 'latest'],
    ['an empty object', {}],
    ['a non-ID after', { after: 'abc' }],
    ['a numeric after', { after: 12 }],
    ['an ID with junk', { after: '1-2-3' }],
    ['an invalid Date', new Date('nope')],
    ['a function', () => 'newest'],
  ])('rejects %s with InvalidArgumentError', (_what, value) => {
    let thrown: unknown;
    try {
      parseStart('startAt', value);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect(thrown).toBeInstanceOf(PulseError);
    expect((thrown as Error).message).toContain('startAt');
  });
});

describe('entry IDs', () => {
  it('compareIds orders by milliseconds, then sequence, numerically', () => {
    expect(compareIds('1-0', '1-0')).toBe(0);
    expect(compareIds('1-0', '2-0')).toBeLessThan(0);
    expect(compareIds('2-0', '1-0')).toBeGreaterThan(0);
    expect(compareIds('1-2', '1-10')).toBeLessThan(0); // not string order
    expect(compareIds('9-0', '10-0')).toBeLessThan(0); // not string order
    expect(compareIds('5', '5-0')).toBe(0);
    expect(compareIds('5', '5-1')).toBeLessThan(0);
  });

  it('compareIds is exact beyond 2^53', () => {
    expect(compareIds('1-18446744073709551615', '1-18446744073709551614')).toBeGreaterThan(0);
    expect(compareIds('1-9007199254740993', '1-9007199254740992')).toBeGreaterThan(0);
    expect(compareIds('18446744073709551615-0', '18446744073709551614-0')).toBeGreaterThan(0);
  });

  it('sorting with compareIds', () => {
    const ids = ['10-0', '2-1', '2-0', '1-100', '1-9'];
    expect([...ids].sort(compareIds)).toEqual(['1-9', '1-100', '2-0', '2-1', '10-0']);
  });

  it('idTime is the milliseconds part', () => {
    expect(idTime('1700000000123-42')).toBe(1_700_000_000_123);
    expect(idTime('1700000000123')).toBe(1_700_000_000_123);
    expect(idTime('0-1')).toBe(0);
  });

  it('idBefore is the last possible ID of the previous millisecond', () => {
    expect(idBefore(1000)).toBe('999-18446744073709551615');
    expect(compareIds(idBefore(1000), '1000-0')).toBeLessThan(0);
    expect(compareIds(idBefore(1000), '999-99999')).toBeGreaterThan(0);
    expect(compareIds(idBefore(0), '0-1')).toBeLessThan(0);
  });

  it('previousId is the ID just before, beyond 2^53 too', () => {
    expect(previousId('5-3')).toBe('5-2');
    expect(previousId('5-0')).toBe('4-18446744073709551615');
    expect(previousId('0-0')).toBe('0-0');
    expect(previousId('1-9007199254740993')).toBe('1-9007199254740992');
  });
});

describe('goneAfterCheck', () => {
  const stream = () => newSinkStream('g', sinkSettings({}), { name: 'x', key: 'pulse:stream:x' } as never);
  it('remembers what was read after the last check, as Redis-lost', () => {
    const s = stream();
    s.tailAtCheck = '5-0';
    s.lastRead = '9-0';
    goneAfterCheck(s);
    expect([rolledBack(s, '5-0'), rolledBack(s, '6-0'), rolledBack(s, '9-0'), rolledBack(s, '9-1')]).toEqual([
      false,
      true,
      true,
      false,
    ]);
  });
  it("a key created anew at `before`: the new key's events read already are not the old one's (a duplicate, else)", () => {
    const s = stream();
    s.tailAtCheck = '5-0';
    s.lastRead = '20-3';
    goneAfterCheck(s, '20-0');
    expect([rolledBack(s, '19-7'), rolledBack(s, '20-0'), rolledBack(s, '20-3')]).toEqual([true, false, false]);
  });
});

describe('topicMatcher', () => {
  it('undefined matches everything (no matcher)', () => {
    expect(topicMatcher(undefined)).toBeUndefined();
  });

  it('a string matches the topic exactly', () => {
    const m = topicMatcher('orders');
    expect(m).toBeDefined();
    expect(m?.('orders')).toBe(true);
    expect(m?.('orders2')).toBe(false);
    expect(m?.('Orders')).toBe(false);
    expect(m?.('xorders')).toBe(false);
    expect(m?.(undefined)).toBe(false);
  });

  it('a string is not a pattern', () => {
    const m = topicMatcher('a.c');
    expect(m?.('a.c')).toBe(true);
    expect(m?.('abc')).toBe(false);
  });

  it('a RegExp tests the topic', () => {
    const m = topicMatcher(/^order\.(created|paid)$/);
    expect(m?.('order.created')).toBe(true);
    expect(m?.('order.paid')).toBe(true);
    expect(m?.('order.cancelled')).toBe(false);
    expect(m?.(undefined)).toBe(false);
  });

  it('a global or sticky RegExp matches every time, not every other time', () => {
    for (const re of [/ord/g, /ord/y, /ord/gi]) {
      const m = topicMatcher(re);
      const results = Array.from({ length: 6 }, () => m?.('ord'));
      expect(results).toEqual([true, true, true, true, true, true]);
    }
    const re = /x/g;
    const m = topicMatcher(re);
    m?.('x');
    expect(re.lastIndex).toBe(0); // the user's RegExp is left alone
  });

  it('a RegExp tests the topic as RegExp.test does from the start (a sticky one stays anchored)', () => {
    for (const re of [/a/y, /a/iy, /a/gy, /a/g, /^a/, /a$/m]) {
      const m = topicMatcher(re);
      for (const topic of ['a', 'ba', 'ab', 'A', 'b', 'x\na']) {
        const want = new RegExp(re.source, re.flags).test(topic); // a fresh RegExp: lastIndex 0
        expect(m?.(topic), `${String(re)} on ${JSON.stringify(topic)}`).toBe(want);
        // And again: no state kept between events.
        expect(m?.(topic), `${String(re)} on ${JSON.stringify(topic)}, twice`).toBe(want);
      }
    }
  });

  it('rejects other types', () => {
    for (const bad of [42, null, {}, ['a'], true]) {
      expect(() => topicMatcher(bad)).toThrow(InvalidArgumentError);
    }
  });
});

describe('checkId', () => {
  const MAX = '18446744073709551615';

  it.each(['0', '0-0', '1-1', MAX, `${MAX}-${MAX}`, `0-${MAX}`, `00001-2`])('accepts %s', (id) => {
    expect(checkId('id', id)).toBe(id);
  });

  it.each([
    '18446744073709551616',
    '18446744073709551616-0',
    `0-18446744073709551616`,
    `${MAX}-18446744073709551616`,
    '99999999999999999999999999999',
    '',
    '-1',
    '1-',
    '1-2-3',
    ' 1-2',
    '1.5-0',
  ])('rejects %j with InvalidArgumentError', (id) => {
    expect(() => checkId('id', id)).toThrow(InvalidArgumentError);
  });

  it('rejects what is not a string', () => {
    for (const v of [1, null, undefined, {}, 1n]) expect(() => checkId('id', v)).toThrow(InvalidArgumentError);
  });
});

describe('checkSignal', () => {
  it('accepts an AbortSignal or nothing', () => {
    const signal = new AbortController().signal;
    expect(checkSignal('signal', signal)).toBe(signal);
    expect(checkSignal('signal', AbortSignal.abort())).toBeInstanceOf(AbortSignal);
    expect(checkSignal('signal', undefined)).toBeUndefined();
  });

  it.each([
    ['a string', 'x'],
    ['null', null],
    ['a number', 3],
    ['an object', {}],
    ['an AbortController', new AbortController()],
    ['a function', () => {}],
  ])('rejects %s with InvalidArgumentError naming the option', (_what, v) => {
    expect(() => checkSignal('options.signal', v)).toThrow(/options\.signal/);
    expect(() => checkSignal('options.signal', v)).toThrow(InvalidArgumentError);
  });
});

describe('Backoff', () => {
  it('stays within bounds, grows, caps and resets', () => {
    const bo = new Backoff(100, 2000);
    const steps = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
    for (const step of steps) {
      const d = bo.next();
      expect(d).toBeGreaterThanOrEqual(step / 2);
      expect(d).toBeLessThanOrEqual(step);
    }
    expect(bo.failures).toBe(steps.length);
    bo.reset();
    expect(bo.failures).toBe(0);
    const first = bo.next();
    expect(first).toBeGreaterThanOrEqual(50);
    expect(first).toBeLessThanOrEqual(100);
  });

  it('never exceeds the maximum, even after many failures', () => {
    const bo = new Backoff(10, 500);
    for (let i = 0; i < 200; i++) {
      const d = bo.next();
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThanOrEqual(500);
    }
  });

  it('defaults retry at most a few times a second and never spin', () => {
    const bo = new Backoff();
    for (let i = 0; i < 50; i++) {
      const d = bo.next();
      expect(d).toBeGreaterThanOrEqual(50);
      expect(Number.isFinite(d)).toBe(true);
    }
  });

  it('is jittered', () => {
    const values = new Set<number>();
    for (let i = 0; i < 30; i++) {
      const bo = new Backoff(1000, 1000);
      values.add(bo.next());
    }
    expect(values.size).toBeGreaterThan(1);
  });
});

describe('claimRoom', () => {
  it('leaves room for what the sink reads sent ahead may still bring', () => {
    const fanout = new Fanout<SinkEvent>(1000);
    const sub = fanout.add();
    for (let i = 0; i < 300; i++) sub.push({ id: `${i}-0` } as SinkEvent);
    const settings = sinkSettings({});
    // Bound 2000, 300 buffered: 1700 with no read ahead, 1700 - 1200 with reads of 1200 sent ahead.
    expect(claimRoom({ fanout, settings, readAhead: { ahead: 0 } }, 2000)).toBe(1700);
    expect(claimRoom({ fanout, settings, readAhead: { ahead: 1200 } }, 2000)).toBe(500);
    expect(claimRoom({ fanout, settings, readAhead: { ahead: 1900 } }, 2000)).toBe(0);
  });
});

describe('Fanout waits for change', () => {
  // A read loop waits with a signal it aborts when its pause ends: each aborted wait stayed chained
  // behind the next until something changed, so a subscriber stalled for a day kept a chain of
  // closures that grew with every pause, and the change that came at last called them recursively.
  it('waits that ended by their signal are not kept: many of them, then a change, wake only who waits', async () => {
    const fanout = new Fanout<number>(10);
    for (let i = 0; i < 50_000; i++) {
      const ac = new AbortController();
      const p = fanout.changed(ac.signal);
      ac.abort();
      await p;
    }
    let woken = false;
    const waiting = fanout.changed(new AbortController().signal).then(() => {
      woken = true;
    });
    expect(() => fanout.add()).not.toThrow();
    await waiting;
    expect(woken).toBe(true);
  });
});

describe('Fanout sharing (a sink instance)', () => {
  it('hands each item to one subscription: a waiting one first, else the least full, never past the limit', async () => {
    const dropped: number[] = [];
    const fanout = new Fanout<number>(2, { share: true, limit: 3, onDropped: (items) => dropped.push(...items) });
    const a = fanout.add();
    const b = fanout.add();
    const waiting = b.next();
    fanout.deliver(1);
    expect((await waiting).value).toBe(1);
    for (const n of [2, 3, 4, 5, 6, 7, 8]) fanout.deliver(n);
    expect([a.size, b.size]).toEqual([3, 3]);
    expect(dropped).toEqual([8]);
    // Room and readiness count every subscription's own bound.
    expect(fanout.ready()).toBe(false);
    expect(fanout.room(4)).toBe(2);
  });

  it('a subscription about to wait takes the older half of what the fullest sibling buffered', async () => {
    const fanout = new Fanout<number>(10, { share: true });
    const a = fanout.add();
    const b = fanout.add();
    for (const n of [1, 2, 3, 4, 5]) a.push(n);
    expect((await b.next()).value).toBe(1);
    expect([a.size, b.size]).toEqual([2, 2]);
    expect((await a.next()).value).toBe(4);
  });

  it('a stalled subscription gets nothing while another takes events; what it buffered goes to the others', async () => {
    const dropped: number[] = [];
    let woken = 0;
    const fanout = new Fanout<number>(10, { share: true, onDropped: (items) => dropped.push(...items), onAdded: () => woken++ });
    const stuck = fanout.add();
    for (const n of [1, 2, 3, 4]) stuck.push(n);
    // The library's clock (subscriptions note activity on it), not Date.now().
    const since = monotonicNow();
    // The clock moves on: the stuck one was last active before `since`.
    await waitFor(() => monotonicNow() > since + 1, { interval: 1 });
    const active = fanout.add();
    // About to wait, it takes the older half of the stuck one's buffer.
    expect((await active.next()).value).toBe(1);
    expect(fanout.releaseStalled(since - 60_000)).toBe(0);
    expect(fanout.releaseStalled(since + 1)).toBe(2);
    expect([stuck.stalled, active.stalled, stuck.size, active.size]).toEqual([true, false, 0, 3]);
    fanout.deliver(5);
    expect([stuck.size, active.size]).toEqual([0, 4]);
    fanout.remove(active);
    expect(dropped).toEqual([2, 3, 4, 5]);
    // Every one stalled: the sink reads nothing (not ready, no room), and what a read that was out
    // brings is given back, not buffered where no one takes it and no one holds it.
    fanout.deliver(6);
    expect([dropped, stuck.size, fanout.ready(), fanout.room(10)]).toEqual([[2, 3, 4, 5, 6], 0, false, 0]);
    // Asking again ends the stall (and tells the sink, which takes back what it gave back).
    const before = woken;
    void stuck.next();
    expect([stuck.stalled, woken - before]).toEqual([false, 1]);
  });
});
