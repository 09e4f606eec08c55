/**
 * The wire, without a server: how every client and protocol shape of a
 * stream reply is parsed (entries, events, field maps), and the key layout
 * (hash tags, cluster slots), checked against Redis Cluster's own slot
 * function written out here.
 */

import { describe, expect, it } from 'vitest';
import {
  bookkeepingPrefix,
  hashTagOf,
  sinkKeys,
  sinkRegistryKey,
  streamKey,
} from '../packages/pulse-streaming/src/internal/keys.js';
import { eventInit, mapPairs, type RawEntry, streamEntries } from '../packages/pulse-streaming/src/internal/replies.js';

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
