import { streamKey } from 'pulse-streaming/keys';
import type { CliRedis } from '../clients.js';
import type { CommandContext } from '../context.js';
import { deadLetterStreamName } from '../deadLetters.js';
import { CliError, describeError } from '../errors.js';
import { displayText, formatCount, formatDuration, idShortTime, type Painter, printJson, table } from '../format.js';
import { type SinkInfo, type StreamDetails, sinkInfos, streamSummary } from '../inspect.js';
import { num, text } from '../replies.js';
import { requireStream } from '../streamChecks.js';

function sinksText(sinks: readonly SinkInfo[], paint: Painter): string {
  if (sinks.length === 0) return 'no sinks';
  const rows = sinks.map((s) => [
    paint.paint('cyan', displayText(s.name)),
    String(s.consumers.length),
    s.pending > 0 ? paint.paint('yellow', formatCount(s.pending)) : '0',
    s.lag === null ? '?' : formatCount(s.lag),
    s.lastDeliveredId,
  ]);
  const parts = [table(['SINK', 'CONSUMERS', 'PENDING', 'LAG', 'LAST DELIVERED ID'], rows, { right: [1, 2, 3], paint })];
  for (const s of sinks) {
    if (s.consumers.length === 0) continue;
    const crow = s.consumers.map((c) => [
      displayText(c.name),
      formatCount(c.pending),
      formatDuration(c.idleMs),
      c.keepAliveAgeMs === null ? '-' : `${formatDuration(c.keepAliveAgeMs)} ago`,
    ]);
    parts.push(
      `\nconsumers of ${paint.paint('cyan', displayText(s.name))}:\n${table(['CONSUMER', 'PENDING', 'IDLE', 'KEEP-ALIVE'], crow, { right: [1, 2], paint, indent: '  ' })}`,
    );
  }
  return parts.join('\n');
}

/** How many dead letters a stream has, or why that cannot be told. */
interface DeadCount {
  /** Entries of `<name>:dead` (0 when absent); null when it cannot be read. */
  count: number | null;
  /** Why it cannot be read; null when it can. */
  error: string | null;
}

/**
 * The length of the stream's dead-letter stream. A failure is reported, not
 * taken for 0: "no dead letters" during an incident sends the operator away
 * from events that were given up on.
 */
async function deadCount(client: CliRedis, name: string): Promise<DeadCount> {
  const key = streamKey(deadLetterStreamName(name));
  try {
    return { count: num(await client.call('XLEN', key)), error: null };
  } catch (err) {
    const type = await client.call('TYPE', key).then(text, () => 'stream');
    const error = type !== 'stream' && type !== 'none' ? `the key holds a ${type}, not a stream` : describeError(err);
    return { count: null, error };
  }
}

function deadText(dead: DeadCount, paint: Painter): string {
  if (dead.count === null) return paint.paint('red', '?');
  return dead.count > 0 ? paint.paint('yellow', formatCount(dead.count)) : '0';
}

/** `stream <name>`: a stream's length, first and last entries, TTL, dead letters and sinks. */
export async function streamCommand(ctx: CommandContext, name: string): Promise<number> {
  const { client } = await ctx.connect();
  await requireStream(client, name);
  const [summary, sinks, dead] = await Promise.all([
    streamSummary(client, name),
    sinkInfos(client, name),
    deadCount(client, name),
  ]);
  if (!summary) throw new CliError(`stream ${JSON.stringify(name)} was deleted while being read`);
  const details: StreamDetails & { deadLetterCount: number | null; deadLetterError: string | null } = {
    ...summary,
    sinkDetails: sinks,
    deadLetterCount: dead.count,
    deadLetterError: dead.error,
  };
  if (ctx.json) {
    printJson(details);
    return 0;
  }
  const { paint } = ctx;
  const lines = [
    `${paint.paint('bold', 'stream')} ${paint.paint('cyan', displayText(name))} ${paint.paint('dim', `(key ${displayText(summary.key)})`)}`,
    `  length        ${formatCount(summary.length)}`,
    `  first entry   ${summary.firstId ?? '-'}  ${summary.firstId === null ? '-' : idShortTime(summary.firstId)}`,
    `  last entry    ${summary.lastId ?? '-'}  ${summary.lastId === null ? '-' : idShortTime(summary.lastId)}`,
    `  ttl           ${summary.ttlMs === null ? 'none' : formatDuration(summary.ttlMs)}`,
    `  dead letters  ${deadText(dead, paint)} (stream ${displayText(deadLetterStreamName(name))}${dead.error === null ? '' : `: ${dead.error}`})`,
    '',
    sinksText(sinks, paint),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** `sinks <stream>`: the stream's sinks with their consumers, pending counts, lag and idle times. */
export async function sinksCommand(ctx: CommandContext, name: string): Promise<number> {
  const { client } = await ctx.connect();
  await requireStream(client, name);
  const sinks = await sinkInfos(client, name);
  if (ctx.json) printJson(sinks);
  else process.stdout.write(`${sinksText(sinks, ctx.paint)}\n`);
  return 0;
}
