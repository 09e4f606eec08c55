/** Ways to append events: through the library and with raw XADD. Shared by in-process cases and worker processes. */
import type { Stream } from '../packages/pulse-streaming/src/index.js';
import type { BenchClient, Command } from './clients.js';
import { EVENT_NAME, xadd } from './rawStreams.js';

export type RawPublishMode = 'pipeline' | 'concurrent';

/** `stream.add` with `window` promises outstanding at a time. */
export async function publishWithLibrary(stream: Stream, events: number, payload: Buffer, window: number): Promise<void> {
  const pending: Promise<string | undefined>[] = [];
  for (let sent = 0; sent < events; sent += window) {
    pending.length = 0;
    const size = Math.min(window, events - sent);
    for (let i = 0; i < size; i++) pending.push(stream.add(EVENT_NAME, payload));
    await Promise.all(pending);
  }
}

/** Raw XADD in batches of `window`: the client's pipeline, or that many concurrent commands. */
export async function publishRaw(
  client: BenchClient,
  key: string,
  events: number,
  payload: Buffer,
  window: number,
  mode: RawPublishMode,
): Promise<void> {
  const batch: Command[] = [];
  for (let sent = 0; sent < events; sent += window) {
    batch.length = 0;
    const size = Math.min(window, events - sent);
    for (let i = 0; i < size; i++) batch.push(xadd(key, payload));
    await (mode === 'pipeline' ? client.pipeline(batch) : client.concurrent(batch));
  }
}

/** Awaited `stream.add`, one at a time. */
export async function publishOneByOneWithLibrary(stream: Stream, events: number, payload: Buffer): Promise<void> {
  for (let i = 0; i < events; i++) await stream.add(EVENT_NAME, payload);
}

/** Awaited raw XADD, one at a time. */
export async function publishOneByOneRaw(client: BenchClient, key: string, events: number, payload: Buffer): Promise<void> {
  for (let i = 0; i < events; i++) await client.send(xadd(key, payload));
}

/** {@link publishWithLibrary} over several streams: event `i` goes to `streams[i % streams.length]`. */
export async function publishSpreadWithLibrary(
  streams: readonly Stream[],
  events: number,
  payload: Buffer,
  window: number,
): Promise<void> {
  const pending: Promise<string | undefined>[] = [];
  for (let sent = 0; sent < events; sent += window) {
    pending.length = 0;
    const size = Math.min(window, events - sent);
    for (let i = 0; i < size; i++) pending.push((streams[(sent + i) % streams.length] as Stream).add(EVENT_NAME, payload));
    await Promise.all(pending);
  }
}

/** Raw XADD with `window` concurrent commands at a time over several keys: event `i` goes to `keys[i % keys.length]`. */
export async function publishSpreadRaw(
  client: BenchClient,
  keys: readonly string[],
  events: number,
  payload: Buffer,
  window: number,
): Promise<void> {
  const batch: Command[] = [];
  for (let sent = 0; sent < events; sent += window) {
    batch.length = 0;
    const size = Math.min(window, events - sent);
    for (let i = 0; i < size; i++) batch.push(xadd(keys[(sent + i) % keys.length] as string, payload));
    await client.concurrent(batch);
  }
}
