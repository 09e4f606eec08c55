import { type Event, type StartAt, Stream } from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import { type CliRedis, isCluster } from '../clients.js';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { payloadDisplay, payloadJson } from '../format.js';
import { onCleanup, shutdownSignal } from '../lifecycle.js';
import { text } from '../replies.js';

/** Options of `tail`. */
export interface TailOptions {
  readonly topic?: string;
  readonly count?: number;
  readonly from?: string;
  readonly after?: string;
}

const ID = /^\d+(-\d+)?$/;

function startAt(options: TailOptions): StartAt {
  if (options.after !== undefined) {
    if (!ID.test(options.after)) throw new CliError(`--after takes an entry ID like 1700000000000-0, got ${options.after}`, 2);
    return { after: options.after };
  }
  const from = options.from ?? 'newest';
  if (from === 'newest' || from === 'oldest') return from;
  const time = new Date(from);
  if (Number.isNaN(time.getTime())) throw new CliError(`--from takes newest, oldest or a time (ISO 8601), got ${from}`, 2);
  return time;
}

function line(ctx: CommandContext, ev: Event): string {
  if (ctx.json) {
    return JSON.stringify({
      id: ev.id,
      stream: ev.streamName,
      event: ev.eventName,
      topic: ev.topic ?? null,
      time: ev.createdAt.toISOString(),
      ...payloadJson(ev.payload),
    });
  }
  const { paint } = ctx;
  const topic = ev.topic ? ` ${paint.paint('magenta', `[${ev.topic}]`)}` : '';
  return `${paint.paint('dim', ev.createdAt.toISOString())} ${paint.paint('gray', ev.id)} ${paint.paint('cyan', ev.eventName)}${topic} ${payloadDisplay(ev.payload)}`;
}

/**
 * Makes an idle cluster client notice that the cluster is gone: it only drops
 * a node when a command to it fails, and ends once none is left. A plain
 * client ends by itself when its connection closes. Returns the stopper.
 */
function probeCluster(client: CliRedis): () => void {
  if (!isCluster(client)) return () => {};
  const timer = setInterval(() => {
    client.ping().catch(() => {});
  }, 1000);
  return () => clearInterval(timer);
}

/**
 * `tail <stream>`: prints events as they are added (one JSON object per line
 * with --json) until Ctrl-C, or until `--count` events were printed.
 */
export async function tailCommand(ctx: CommandContext, name: string, options: TailOptions): Promise<number> {
  const start = startAt(options);
  const { client } = await ctx.connect();
  const stream = new Stream(name, client);
  const type = text(await client.call('TYPE', streamKey(name)));
  if (type !== 'stream' && type !== 'none') {
    throw new CliError(`${streamKey(name)} is not a pulse stream: the key holds a ${type}, not a stream`);
  }
  if (type === 'none') ctx.note(`stream ${name} does not exist yet: waiting for its first event`);
  const reader = await stream.newReader({ startAt: start, blockMs: 2000, ...(options.topic ? { topic: options.topic } : {}) });
  onCleanup(() => reader.close());
  // The program's client does not reconnect: when it ends, Redis is gone.
  const lost = new AbortController();
  client.once('end', () => lost.abort());
  const stopProbing = probeCluster(client);
  let printed = 0;
  try {
    for await (const ev of reader.subscribe({ signal: AbortSignal.any([shutdownSignal, lost.signal]) })) {
      process.stdout.write(`${line(ctx, ev)}\n`);
      printed++;
      if (options.count !== undefined && printed >= options.count) break;
    }
  } finally {
    stopProbing();
    await reader.close();
  }
  if (lost.signal.aborted && !shutdownSignal.aborted) throw new CliError('lost the connection to Redis');
  return 0;
}
