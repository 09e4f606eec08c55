import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { streamKey } from 'pulse-streaming/keys';
import { displayUrl } from '../connection.js';
import type { CommandContext } from '../context.js';
import { deadLetterStreamName } from '../deadLetters.js';
import { DEMO_GRACE_MS, DEMO_SINK, type DemoSnapshot, type DemoSummary, runDemo } from '../demo.js';
import type { TraceSpan } from '../demoProtocol.js';
import { traceLines, tracesOf } from '../demoTraceView.js';
import { frameLines, headerLines, LiveScreen, progressLine, summaryLines } from '../demoView.js';
import { CliError } from '../errors.js';
import { displayText, printJson } from '../format.js';
import { interruptSignal, onExit, shutdownSignal, signalExitCode } from '../lifecycle.js';
import { text } from '../replies.js';
import { refuseBadName } from '../streamChecks.js';

/** Options of `demo`. */
export interface DemoCommandOptions {
  readonly rate?: number;
  readonly duration?: number;
  readonly stream?: string;
  readonly keep?: boolean;
  /** `--trace`: print a few traces at the end; `--trace=FILE`: also write every span to FILE as JSON. */
  readonly trace?: boolean | string;
}

/** Fewest events a demo publishes (`--rate` x `--duration`): one of three consumers is killed midway. */
const MIN_EVENTS = 10;

/**
 * `demo`: runs the live demo and prints its summary (JSON with --json);
 * with --trace, a few of its traces too (demoTrace.ts).
 * Exits 0 when nothing was lost, 1 otherwise, 130 when interrupted.
 */
export async function demoCommand(ctx: CommandContext, options: DemoCommandOptions): Promise<number> {
  const rate = options.rate ?? 500;
  const durationS = options.duration ?? 20;
  if (rate * durationS > 5_000_000) throw new CliError('--rate x --duration is limited to 5,000,000 events', 2);
  // Fewer never came to the consumer kill midway: --rate 0.001 ran for minutes past --duration.
  if (rate * durationS < MIN_EVENTS)
    throw new CliError(`--rate x --duration gives ${rate * durationS} events: the demo needs at least ${MIN_EVENTS}`, 2);
  const streamName = options.stream ?? `pulse-demo-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  if (options.trace === '') throw new CliError('--trace takes a file name (--trace=FILE) or nothing', 2);
  const traceFile = typeof options.trace === 'string' ? options.trace : undefined;
  const target = await ctx.connect();
  if (options.stream !== undefined) {
    // A name the library refuses is refused now (exit 2), not after the banner.
    refuseBadName(target.client, streamName);
    const type = text(await target.client.call('TYPE', streamKey(streamName)));
    if (type !== 'none')
      throw new CliError(`stream ${displayText(streamName)} already exists: the demo needs a new stream name`, 2);
    // The demo deletes <name>:dead when it ends (and counts its letters as its own): a destroyed
    // stream keeps its dead letters there, which are the operator's, not the demo's.
    const dead = deadLetterStreamName(streamName);
    if (text(await target.client.call('TYPE', streamKey(dead))) !== 'none') {
      throw new CliError(
        `stream ${displayText(streamName)} has dead letters (stream ${displayText(dead)} exists): the demo needs a new stream name`,
        2,
      );
    }
  }

  // Live output goes to stdout on a terminal; with --json it goes to stderr so stdout is only the summary.
  const out = ctx.json ? process.stderr : process.stdout;
  const live = out.isTTY === true;
  const paint = ctx.json ? ctx.paintErr : ctx.paint;
  const header = headerLines(
    {
      stream: streamName,
      redis: displayUrl(target.url),
      embedded: target.embedded,
      rate,
      durationS,
      sink: DEMO_SINK,
      graceMs: DEMO_GRACE_MS,
    },
    paint,
  );
  out.write(`${header.join('\n')}\n`);
  const screen = live ? new LiveScreen(out) : undefined;
  const log: string[] = [];
  let last: DemoSnapshot | undefined;
  if (screen) {
    screen.start();
    onExit(() => screen.stop());
  }
  // Before the first add, so that every sampled event's trace starts at the producer.
  const tracing = options.trace ? (await import('../demoTrace.js')).startProducerTracing(rate * durationS) : undefined;
  let summary: DemoSummary;
  let spans: TraceSpan[] = [];
  try {
    summary = await runDemo(target, {
      rate,
      durationS,
      streamName,
      keep: options.keep === true,
      signal: shutdownSignal,
      frameMs: live ? 200 : 1000,
      onFrame: (s) => {
        last = s;
        if (screen) screen.draw(frameLines(s, durationS, log, paint));
        else out.write(`${progressLine(s)}\n`);
      },
      onLog: (atS, message) => {
        const line = `${atS.toFixed(1).padStart(5)}s  ${message}`;
        log.push(line);
        if (screen && last) screen.draw(frameLines(last, durationS, log, paint));
        else if (!screen) out.write(`${line}\n`);
      },
      ...(tracing ? { tracing } : {}),
    });
  } finally {
    screen?.stop();
    spans = (await tracing?.stop()) ?? [];
  }
  if (tracing) {
    if (traceFile !== undefined) await writeFile(traceFile, `${JSON.stringify(spans, null, 1)}\n`);
    summary.trace = { traces: tracesOf(spans).length, spans: spans.length, file: traceFile ?? null };
  }
  if (ctx.json) printJson(summary);
  else process.stdout.write(`${summaryLines(summary, ctx.paint).join('\n')}\n`);
  // The traces after the summary; with --json on stderr, so that stdout stays the JSON summary.
  if (tracing) out.write(`${traceLines(spans, paint, traceFile).join('\n')}\n`);
  if (options.keep) ctx.note(`stream ${streamName} kept`);
  if (summary.interrupted) return signalExitCode(interruptSignal());
  return summary.lost === 0 ? 0 : 1;
}
