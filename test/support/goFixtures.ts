/**
 * Events and comparisons shared by the Go interop tests: payloads that a
 * byte-for-byte promise must survive (empty, NUL, invalid UTF-8, 1 MB),
 * names and topics beyond ASCII, and a normal form that compares events
 * from either side by ID, name, topic, payload hash and creation time.
 */
import { createHash } from 'node:crypto';
import type { Event } from '../../packages/pulse-streaming/src/index.js';
import { type GoAddSpec, type GoLine, payloadOf } from './goInterop.js';

/** 1 MiB of deterministic bytes (every byte value, no valid UTF-8 run to lean on). */
function bigPayload(): Buffer {
  const out = Buffer.alloc(1024 * 1024);
  let x = 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const BIG = bigPayload();

/** The events both directions add: every payload shape, with and without topics. */
export function interopEvents(): GoAddSpec[] {
  return [
    { name: 'text', payload: Buffer.from('hello, go') },
    { name: 'empty', topic: 'orders.eu', payload: Buffer.alloc(0) },
    { name: 'nul', payload: Buffer.from([0, 1, 0, 2, 0]) },
    // Invalid UTF-8: lone continuation bytes, an overlong form, a surrogate, 0xff.
    { name: 'invalid-utf8', topic: 'orders.us', payload: Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0x80, 0xed, 0xa0, 0x80, 0xc3]) },
    { name: 'ünïcödé ✓ 事件', topic: 'tøpic/ü', payload: Buffer.from('{"k":"日本語"}', 'utf8') },
    { name: 'big', payload: BIG },
    { name: 'json', topic: 'orders.eu', payload: Buffer.from('{"id":42}') },
    { name: 'crlf\r\nname', payload: Buffer.from('\r\n*1\r\n$4\r\nPING\r\n') },
  ];
}

/** One event in a form both sides can be compared in (payloads by length and hash). */
export interface Norm {
  readonly id: string;
  readonly name: string;
  readonly topic: string;
  readonly size: number;
  readonly sha256: string;
  readonly createdAtMs: number;
}

const hashOf = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const msOf = (id: string): number => Number(id.slice(0, id.indexOf('-')));

/** What was added: the spec with the ID it got (the creation time is the ID's milliseconds). */
export function normAdded(spec: GoAddSpec, id: string): Norm {
  return {
    id,
    name: spec.name,
    topic: spec.topic ?? '',
    size: spec.payload.length,
    sha256: hashOf(spec.payload),
    createdAtMs: msOf(id),
  };
}

/** An event the Go program printed (Go's empty topic is ''). */
export function normGo(l: GoLine): Norm {
  const p = payloadOf(l);
  return {
    id: l.id ?? '',
    name: l.name,
    topic: l.topic,
    size: p.length,
    sha256: hashOf(p),
    createdAtMs: l.createdAtMs ?? -1,
  };
}

/** An event the Node library delivered (no topic is '' as in Go). */
export function normNode(e: Event): Norm {
  return {
    id: e.id,
    name: e.eventName,
    topic: e.topic ?? '',
    size: e.payload.length,
    sha256: hashOf(e.payload),
    createdAtMs: e.createdAt.getTime(),
  };
}

/** The entry's field names in stored order (XRANGE of one ID), to pin the wire layout. */
export async function fieldNames(cmd: Cmd, key: string, id: string): Promise<string[]> {
  const reply = (await cmd('XRANGE', key, id, id)) as Array<[string, unknown[]]>;
  const fields = reply[0]?.[1] ?? [];
  return fields.filter((_, i) => i % 2 === 0).map(String);
}

type Cmd = (...a: string[]) => Promise<unknown>;

/** Every key of a (private) server with its type. */
export async function allKeyTypes(cmd: Cmd): Promise<Map<string, string>> {
  const keys = ((await cmd('KEYS', '*')) as unknown[]).map(String);
  return new Map(await Promise.all(keys.map(async (k) => [k, String(await cmd('TYPE', k))] as const)));
}

/** Pending count per consumer group of a stream (XINFO GROUPS as RESP2 pairs or a RESP3 map). */
export async function pendingByGroup(cmd: Cmd, key: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const g of (await cmd('XINFO', 'GROUPS', key)) as unknown[]) {
    const flat = Array.isArray(g) ? g : Object.entries(g as object).flat();
    const f = new Map<string, unknown>();
    for (let i = 0; i + 1 < flat.length; i += 2) f.set(String(flat[i]), flat[i + 1]);
    out[String(f.get('name'))] = Number(f.get('pending'));
  }
  return out;
}
