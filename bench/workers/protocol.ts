/** What the benchmark process and its producer/consumer child processes tell each other. */
import { CLIENT_KINDS, type ClientKind } from '../clients.js';
import type { MemoryReport } from '../results.js';

/** Which implementation a worker runs: the library, or raw commands. */
export type Side = 'library' | 'raw';

/**
 * What a worker is for its whole life; each run names its side, stream and
 * count. The side is per run so that one pair of processes runs both sides
 * in turn: how fast a process runs varies from one process to the next by up
 * to 2x on these machines (CPU per event, same code), and runs of both sides
 * in the same processes share that luck instead of turning it into a ratio.
 */
export interface ProducerConfig {
  readonly role: 'producer';
  readonly kind: ClientKind;
  readonly url: string;
  readonly window: number;
  readonly payloadBytes: number;
}

export interface ConsumerConfig {
  readonly role: 'consumer';
  readonly kind: ClientKind;
  readonly url: string;
  readonly group: string;
  /** Send a progress message every this many events; 0 for none. */
  readonly progressEvery: number;
  /** Sample RSS and heap, and report them when done. */
  readonly sampleMemory: boolean;
}

export type WorkerConfig = ProducerConfig | ConsumerConfig;

/**
 * Parent to worker: one run. A consumer gets ready to consume `events` events
 * added to `stream` from now on, says `ready`, consumes them and says `done`;
 * a producer publishes them at once and says `done`. The worker exits when
 * the parent closes the IPC channel.
 */
export interface RunMessage {
  readonly type: 'run';
  readonly side: Side;
  readonly stream: string;
  readonly events: number;
}

/** Worker to parent. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly consumed: number }
  | { readonly type: 'done'; readonly elapsedMs: number; readonly memory?: MemoryReport }
  | { readonly type: 'error'; readonly message: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

export function isWorkerMessage(v: unknown): v is WorkerMessage {
  return isRecord(v) && (v.type === 'ready' || v.type === 'progress' || v.type === 'done' || v.type === 'error');
}

export function isRunMessage(v: unknown): v is RunMessage {
  return (
    isRecord(v) &&
    v.type === 'run' &&
    (v.side === 'library' || v.side === 'raw') &&
    typeof v.stream === 'string' &&
    typeof v.events === 'number'
  );
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new Error(`worker config: ${name} must be a string`);
  return v;
}

function int(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`worker config: ${name} must be an integer >= 0`);
  return v;
}

function kindOf(v: unknown): ClientKind {
  const kind = CLIENT_KINDS.find((k) => k === v);
  if (!kind) throw new Error(`worker config: unknown client ${String(v)}`);
  return kind;
}

/** Parses the JSON config a worker gets as its first argument. */
export function parseWorkerConfig(json: string | undefined): WorkerConfig {
  const v: unknown = JSON.parse(json ?? 'null');
  if (!isRecord(v)) throw new Error('worker config: missing');
  const common = {
    kind: kindOf(v.kind),
    url: str(v.url, 'url'),
  };
  if (v.role === 'producer') {
    return { role: 'producer', ...common, window: int(v.window, 'window'), payloadBytes: int(v.payloadBytes, 'payloadBytes') };
  }
  if (v.role === 'consumer') {
    return {
      role: 'consumer',
      ...common,
      group: str(v.group, 'group'),
      progressEvery: int(v.progressEvery, 'progressEvery'),
      sampleMemory: v.sampleMemory === true,
    };
  }
  throw new Error(`worker config: unknown role ${String(v.role)}`);
}
