/**
 * Pure unit tests of the internal building blocks, without a server:
 * start-position parsing, entry IDs, topic matching, reply parsing for every
 * client/protocol shape, the key layout (cluster slots), reply codes and
 * which errors a retry can outlive, entry ID and signal validation, backoff.
 */

import { ReplyError } from 'ioredis';
import { ClientClosedError, ErrorReply, SimpleError, SocketClosedUnexpectedlyError } from 'redis';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, PulseError, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { Backoff } from '../packages/pulse-streaming/src/internal/backoff.js';
import { compareIds, idBefore, idTime } from '../packages/pulse-streaming/src/internal/ids.js';
import {
  bookkeepingPrefix,
  hashTagOf,
  sinkKeys,
  sinkRegistryKey,
  streamKey,
} from '../packages/pulse-streaming/src/internal/keys.js';
import { isRetryable, replyCode } from '../packages/pulse-streaming/src/internal/redisErrors.js';
import { eventInit, mapPairs, type RawEntry, streamEntries } from '../packages/pulse-streaming/src/internal/replies.js';
import { claimRoom } from '../packages/pulse-streaming/src/internal/sinkClaims.js';
import { sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { parseStart } from '../packages/pulse-streaming/src/internal/start.js';
import { topicMatcher } from '../packages/pulse-streaming/src/internal/topic.js';
import { checkId, checkSignal } from '../packages/pulse-streaming/src/internal/validate.js';
import { Fanout } from '../packages/pulse-streaming/src/subscription.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** CRC16-XMODEM, as Redis Cluster computes key slots (independent of the library). */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Redis Cluster's keyHashSlot: the first `{`, the first `}` after it, a non-empty tag, else the whole key. */
function slotOf(key: string): number {
  const k = Buffer.from(key, 'utf8');
  const open = k.indexOf('{');
  if (open >= 0) {
    const close = k.indexOf('}', open + 1);
    if (close > open + 1) return crc16(k.subarray(open + 1, close)) % 16384;
  }
  return crc16(k) % 16384;
}

/** The event fields eventInit reads from an entry's raw fields. */
function decode(fields: Buffer[]) {
  return eventInit('s', ['1-1', fields] as RawEntry);
}

describe('slotOf (test helper)', () => {
  it('matches Redis Cluster reference values', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('foo{}{bar}')).toBe(crc16(Buffer.from('foo{}{bar}')) % 16384);
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
    expect(s).toEqual({ kind: 'id', id: `${ms - 1}-18446744073709551615` });
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
    expect(parseStart('startAt', { after: '0' })).toEqual({ kind: 'id', id: '0' });
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

describe('reply parsing', () => {
  const fieldsA = [b('n'), b('ev'), b('p'), Buffer.from([0, 255, 128]), b('t'), b('tp')];
  const fieldsB = [b('n'), b('ev2'), b('p'), b('x')];
  const entriesK1 = [
    [b('1-0'), fieldsA],
    [b('1-1'), fieldsB],
  ];
  const entriesK2 = [[b('2-0'), fieldsB]];
  const expected = [
    [
      'k1',
      [
        ['1-0', fieldsA],
        ['1-1', fieldsB],
      ],
    ],
    ['k2', [['2-0', fieldsB]]],
  ];

  it('streamEntries parses the RESP2 nested array shape', () => {
    expect(
      streamEntries([
        [b('k1'), entriesK1],
        [b('k2'), entriesK2],
      ]),
    ).toEqual(expected);
  });

  it('streamEntries parses the flat array shape (ioredis RESP3 map)', () => {
    expect(streamEntries([b('k1'), entriesK1, b('k2'), entriesK2])).toEqual(expected);
  });

  it('streamEntries parses a Map (node-redis RESP3)', () => {
    expect(
      streamEntries(
        new Map<unknown, unknown>([
          [b('k1'), entriesK1],
          ['k2', entriesK2],
        ]),
      ),
    ).toEqual(expected);
  });

  it('streamEntries parses a plain object (node-redis RESP3)', () => {
    expect(streamEntries({ k1: entriesK1, k2: entriesK2 })).toEqual(expected);
  });

  it('streamEntries accepts string IDs and fields', () => {
    expect(streamEntries([['k1', [['1-0', ['n', 'ev', 'p', 'x']]]]])).toEqual([
      ['k1', [['1-0', [b('n'), b('ev'), b('p'), b('x')]]]],
    ]);
  });

  it('streamEntries accepts entry fields given as a map', () => {
    const r = streamEntries([['k1', [['1-0', new Map([['n', 'ev']])]]]]);
    expect(r).toEqual([['k1', [['1-0', [b('n'), b('ev')]]]]]);
  });

  it('streamEntries of an empty or null reply is empty', () => {
    expect(streamEntries(null)).toEqual([]);
    expect(streamEntries(undefined)).toEqual([]);
    expect(streamEntries([])).toEqual([]);
    expect(streamEntries(new Map())).toEqual([]);
    expect(streamEntries({})).toEqual([]);
  });

  it('streamEntries keeps bytes intact', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const [[, [entry] = []] = ['', []]] = streamEntries([[b('k'), [[b('1-0'), [b('p'), all]]]]]);
    expect(entry?.[1][1]?.equals(all)).toBe(true);
  });

  it('mapPairs handles nested, flat, Map and object shapes', () => {
    const want = [
      ['a', 1],
      ['b', 2],
    ];
    expect(
      mapPairs([
        ['a', 1],
        ['b', 2],
      ]),
    ).toEqual(want);
    expect(mapPairs(['a', 1, 'b', 2])).toEqual(want);
    expect(mapPairs([b('a'), 1, b('b'), 2])).toEqual(want);
    expect(
      mapPairs(
        new Map<unknown, unknown>([
          [b('a'), 1],
          ['b', 2],
        ]),
      ),
    ).toEqual(want);
    expect(mapPairs({ a: 1, b: 2 })).toEqual(want);
    expect(mapPairs(null)).toEqual([]);
    expect(mapPairs([])).toEqual([]);
  });

  it('eventInit reads n, p and t', () => {
    const d = decode(fieldsA);
    expect(d.eventName).toBe('ev');
    expect(d.payload.equals(Buffer.from([0, 255, 128]))).toBe(true);
    expect(d.topic).toBe('tp');
    expect(d.complete).toBe(true);
  });

  it('eventInit: no t means no topic', () => {
    const d = decode(fieldsB);
    expect(d.topic).toBeUndefined();
    expect(d.complete).toBe(true);
  });

  it('eventInit: a missing n or p gives defaults and complete=false', () => {
    const noName = decode([b('p'), b('x')]);
    expect(noName).toMatchObject({ eventName: '', complete: false });
    expect(noName.payload.equals(b('x'))).toBe(true);
    const noPayload = decode([b('n'), b('ev')]);
    expect(noPayload).toMatchObject({ eventName: 'ev', complete: false });
    expect(noPayload.payload.length).toBe(0);
    const none = decode([b('other'), b('1')]);
    expect(none).toMatchObject({ eventName: '', complete: false, topic: undefined });
    expect(none.payload.length).toBe(0);
    expect(decode([])).toMatchObject({ eventName: '', complete: false });
  });

  it('eventInit decodes every name right across a run of names that share lengths or bytes', () => {
    const names = [
      'ev',
      'ew',
      'ev',
      'ev',
      'naïve-🎉',
      'naïve-🎈',
      'x'.repeat(65),
      'x'.repeat(65),
      `${'x'.repeat(64)}y`,
      '',
      'ev',
    ];
    for (const name of names) {
      // A fresh buffer each time, as each reply gives.
      expect(decode([b('n'), Buffer.from(name, 'utf8'), b('p'), b('x')]).eventName).toBe(name);
    }
  });

  it('eventInit ignores extra fields, including multi-letter ones starting with n/p/t', () => {
    const d = decode([
      b('name'),
      b('no'),
      b('n'),
      b('ev'),
      b('x'),
      b('1'),
      b('payload'),
      b('no'),
      b('p'),
      b('yes'),
      b('tt'),
      b('no'),
    ]);
    expect(d.eventName).toBe('ev');
    expect(d.payload.toString()).toBe('yes');
    expect(d.topic).toBeUndefined();
    expect(d.complete).toBe(true);
  });

  it('eventInit: an empty payload is complete', () => {
    const d = decode([b('n'), b('ev'), b('p'), Buffer.alloc(0)]);
    expect(d.complete).toBe(true);
    expect(d.payload.length).toBe(0);
  });
});

describe('key layout', () => {
  it('stream key follows Go Pulse', () => {
    expect(streamKey('orders')).toBe('pulse:stream:orders');
  });

  it('hashTagOf follows the Redis Cluster rule', () => {
    expect(hashTagOf('pulse:stream:orders')).toBeUndefined();
    expect(hashTagOf('pulse:stream:{tag}orders')).toBe('tag');
    expect(hashTagOf('a{b}c{d}')).toBe('b');
    expect(hashTagOf('a{}b{c}')).toBeUndefined(); // empty first tag: the whole key is hashed
    expect(hashTagOf('a{b')).toBeUndefined();
    expect(hashTagOf('a}b{c}')).toBe('c');
  });

  it('bookkeeping keys of a plain name use the stream key as hash tag', () => {
    expect(bookkeepingPrefix('orders')).toBe('{pulse:stream:orders}');
    expect(sinkRegistryKey('orders')).toBe('{pulse:stream:orders}:sinks');
    const k = sinkKeys('orders', 'billing');
    expect(k.consumers).toBe('{pulse:stream:orders}:sink:billing:consumers');
    expect(k.lease).toBe('{pulse:stream:orders}:sink:billing:lease');
  });

  it('a name containing {tag} puts the bookkeeping keys under {tag}', () => {
    const name = '{tenant7}orders';
    expect(bookkeepingPrefix(name).startsWith('{tenant7}')).toBe(true);
    const k = sinkKeys(name, 's');
    for (const key of [k.consumers, k.lease, sinkRegistryKey(name)]) {
      expect(key.startsWith('{tenant7}')).toBe(true);
      expect(hashTagOf(key)).toBe('tenant7');
    }
    // Different streams keep different bookkeeping keys even with the same tag.
    expect(sinkKeys('{tenant7}a', 's').consumers).not.toBe(sinkKeys('{tenant7}b', 's').consumers);
  });

  it('different streams and sinks never share bookkeeping keys', () => {
    const all = [sinkKeys('a', 'b:c'), sinkKeys('a:b', 'c'), sinkKeys('a', 'b'), sinkKeys('b', 'a')].flatMap((k) => [
      k.consumers,
      k.lease,
    ]);
    expect(new Set(all).size).toBe(all.length);
  });

  // SEMANTICS.md section 6: bookkeeping keys must sit in the stream key's slot, for every valid name.
  it.each([
    'orders',
    'a:b:c',
    '{tenant7}orders',
    'x{y', // unclosed brace
    'a}b{c}', // '}' before the tag
    'a}b', // a lone '}' (valid name)
    'a{}b{c}', // empty first tag: the whole key is hashed
    'ünïcödé-名前',
  ])('bookkeeping keys of stream %j hash to the stream key slot', (name) => {
    const slot = slotOf(streamKey(name));
    const k = sinkKeys(name, 'sink1');
    expect(slotOf(k.consumers)).toBe(slot);
    expect(slotOf(k.lease)).toBe(slot);
    expect(slotOf(sinkRegistryKey(name))).toBe(slot);
  });
});

describe('slotOf', () => {
  it('matches the slots Redis computes', async () => {
    const { slotOf } = await import('../packages/pulse-streaming/src/internal/slot.js');
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('123456789')).toBe(12739);
    expect(slotOf('{user1000}.following')).toBe(slotOf('user1000'));
    expect(slotOf('pulse:stream:a}b')).toBe(16200); // CLUSTER KEYSLOT on redis-server 7.0.15
    expect(slotOf('pulse:stream:a{}b{c}')).toBe(3401);
  });
});

describe('replyCode', () => {
  it('reads the code at the start of a Redis error', () => {
    expect(replyCode(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe('WRONGTYPE');
    expect(replyCode(new Error('NOGROUP No such key or consumer group'))).toBe('NOGROUP');
    expect(replyCode(new Error('BUSYGROUP Consumer Group name already exists'))).toBe('BUSYGROUP');
    expect(replyCode(new Error('NOSCRIPT No matching script. Please use EVAL.'))).toBe('NOSCRIPT');
  });

  it('finds the code wrapped by a script error', () => {
    expect(replyCode(new Error('ERR user_script:12: NOGROUP No such key script: abc, on @user_script:12.'))).toBe('NOGROUP');
    expect(
      replyCode(new Error('ERR Error running script (call to f_x): @user_script:1: WRONGTYPE Operation against a key')),
    ).toBe('WRONGTYPE');
  });

  it('a plain ERR is ERR', () => {
    expect(replyCode(new Error('ERR syntax error'))).toBe('ERR');
  });

  it('is undefined for things that are not Redis errors', () => {
    expect(replyCode('WRONGTYPE as a string')).toBeUndefined();
    expect(replyCode(undefined)).toBeUndefined();
    expect(replyCode(new Error('connection reset'))).toBeUndefined();
    expect(replyCode(new Error('Connection is closed.'))).toBeUndefined();
  });

  it('works on error subclasses (client reply errors)', () => {
    class ReplyError extends Error {}
    expect(replyCode(new ReplyError('NOGROUP No such key'))).toBe('NOGROUP');
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

describe('isRetryable', () => {
  const replies = (message: string): Error[] => [new ReplyError(message), new SimpleError(message), new ErrorReply(message)];

  it.each([
    'NOGROUP No such key or consumer group',
    'LOADING Redis is loading the dataset in memory',
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    "READONLY You can't write against a read only replica.",
    'MOVED 3999 127.0.0.1:6381',
    'ASK 3999 127.0.0.1:6381',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
    'UNBLOCKED client unblocked via CLIENT UNBLOCK',
    'NOSCRIPT No matching script. Please use EVAL.',
    'ERR max number of clients reached',
  ])('a reply %j can be retried (both clients)', (message) => {
    for (const err of replies(message)) expect(isRetryable(err)).toBe(true);
  });

  it.each([
    'ERR Invalid stream ID specified as stream command argument',
    'ERR syntax error',
    "ERR unknown command 'XREAD', with args beginning with: ",
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    "NOPERM User u has no permissions to run the 'xread' command",
    'NOAUTH Authentication required.',
    "CROSSSLOT Keys in request don't hash to the same slot",
  ])('a reply %j cannot (both clients)', (message) => {
    for (const err of replies(message)) expect(isRetryable(err)).toBe(false);
  });

  it('connection and client errors can be retried, even when they look like a reply', () => {
    expect(isRetryable(new Error('Connection is closed.'))).toBe(true);
    expect(isRetryable(new Error('ERR looks like a reply but is not one'))).toBe(true);
    expect(isRetryable(new SocketClosedUnexpectedlyError())).toBe(true);
    expect(isRetryable(new ClientClosedError())).toBe(true);
    expect(isRetryable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetryable('a string')).toBe(true);
  });

  it('judges a PulseError by its cause', () => {
    expect(isRetryable(new PulseError('x', { cause: new ReplyError('WRONGTYPE x') }))).toBe(false);
    expect(isRetryable(new PulseError('x', { cause: new ReplyError('LOADING x') }))).toBe(true);
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
