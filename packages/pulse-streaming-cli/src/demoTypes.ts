/**
 * What the demo takes and gives: its options, the snapshot each frame shows
 * and the summary it ends with (demo.ts runs it, demoView.ts shows it).
 */
import type { DemoTracing } from './demoTrace.js';

/** Options of `runDemo`. */
export interface DemoOptions {
  readonly rate: number;
  readonly durationS: number;
  readonly streamName: string;
  readonly keep: boolean;
  /** Stops the demo early (Ctrl-C). */
  readonly signal: AbortSignal;
  /** Called about every `frameMs` with the current state. */
  readonly onFrame: (snapshot: DemoSnapshot) => void;
  readonly frameMs: number;
  /** Called for each notable moment (a kill, redeliveries). */
  readonly onLog: (atS: number, message: string) => void;
  /** With --trace: where the consumer processes' spans go (they trace when it is set). */
  readonly tracing?: DemoTracing;
}

/** One consumer as shown on a frame. */
export interface ConsumerView {
  readonly label: string;
  readonly pid: number;
  readonly alive: boolean;
  readonly handled: number;
  readonly pending: number;
}

/** The state shown on each frame. */
export interface DemoSnapshot {
  readonly elapsedS: number;
  readonly phase: 'publishing' | 'draining' | 'done';
  readonly target: number;
  readonly published: number;
  /** Published events some consumer handled, each counted once. */
  readonly handledUnique: number;
  /** Handlings of an event already handled (redeliveries of events the killed consumer had not acked). */
  readonly duplicates: number;
  readonly readerReceived: number;
  readonly publishRate: number;
  /** Unique events handled per second (duplicates not counted). */
  readonly handleRate: number;
  readonly pending: number;
  readonly lag: number | null;
  readonly redeliveries: number;
  readonly deadLetters: number;
  readonly consumers: readonly ConsumerView[];
}

/** What the demo proves, printed at the end. */
export interface DemoSummary {
  stream: string;
  rate: number;
  durationS: number;
  elapsedS: number;
  interrupted: boolean;
  published: number;
  publishFailed: number;
  handledUnique: number;
  handledTotal: number;
  duplicates: number;
  redeliveries: number;
  readerReceived: number;
  deadLetters: number;
  pendingAtEnd: number;
  lost: number;
  /** The consumer process killed midway: its pid, the events it held unacked, and how long until the others had them all. */
  killed: { consumer: string; pid: number; heldUnacked: number; redeliveredAfterS: number | null } | null;
  consumers: { consumer: string; pid: number; handled: number; killed: boolean }[];
  ok: boolean;
  /** With --trace: the traces sampled, the spans collected, and the file they were written to. */
  trace?: { traces: number; spans: number; file: string | null };
}
