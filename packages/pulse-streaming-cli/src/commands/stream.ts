import { streamKey } from 'pulse-streaming/keys';
import type { CommandContext } from '../context.js';
import { deadLetterStreamName } from '../deadLetters.js';
import { CliError } from '../errors.js';
import { displayText, formatCount, formatDuration, type Painter, printJson, shortTime, table } from '../format.js';
import { requireStream, type SinkInfo, type StreamDetails, sinkInfos, streamSummary } from '../inspect.js';

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

/** `stream <name>`: a stream's length, first and last entries, TTL, dead letters and sinks. */
export async function streamCommand(ctx: CommandContext, name: string): Promise<number> {
  const { client } = await ctx.connect();
  await requireStream(client, name);
  const [summary, sinks, deadCount] = await Promise.all([
    streamSummary(client, name),
    sinkInfos(client, name),
    client.call('XLEN', streamKey(deadLetterStreamName(name))).then(Number, () => 0),
  ]);
  if (!summary) throw new CliError(`stream ${JSON.stringify(name)} was deleted while being read`);
  const details: StreamDetails & { deadLetterCount: number } = { ...summary, sinkDetails: sinks, deadLetterCount: deadCount };
  if (ctx.json) {
    printJson(details);
    return 0;
  }
  const { paint } = ctx;
  const lines = [
    `${paint.paint('bold', 'stream')} ${paint.paint('cyan', displayText(name))} ${paint.paint('dim', `(key ${displayText(summary.key)})`)}`,
    `  length        ${formatCount(summary.length)}`,
    `  first entry   ${summary.firstId ?? '-'}  ${shortTime(summary.firstTime)}`,
    `  last entry    ${summary.lastId ?? '-'}  ${shortTime(summary.lastTime)}`,
    `  ttl           ${summary.ttlMs === null ? 'none' : formatDuration(summary.ttlMs)}`,
    `  dead letters  ${deadCount > 0 ? paint.paint('yellow', formatCount(deadCount)) : '0'} (stream ${displayText(deadLetterStreamName(name))})`,
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
