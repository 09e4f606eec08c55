import { displayUrl } from '../connection.js';
import type { CommandContext } from '../context.js';
import { displayText, formatCount, formatDuration, printJson, shortTime, table } from '../format.js';
import { listStreamNames, type StreamSummary, streamSummary } from '../inspect.js';

/** `streams`: every pulse stream on the server (every master of a cluster), with length, first and last entries, TTL and sinks. */
export async function streamsCommand(ctx: CommandContext): Promise<number> {
  const { client, url, cluster } = await ctx.connect();
  const names = await listStreamNames(client);
  const found = await Promise.all(names.map((n) => streamSummary(client, n)));
  const streams = found.filter((s): s is StreamSummary => s !== undefined);
  if (ctx.json) {
    printJson(streams);
    return 0;
  }
  if (streams.length === 0) {
    process.stdout.write(
      `no pulse streams (keys ${'pulse:stream:*'}) on ${cluster ? 'the cluster of ' : ''}${displayUrl(url)}\n`,
    );
    return 0;
  }
  const { paint } = ctx;
  const rows = streams.map((s) => [
    s.deadLetters ? paint.paint('yellow', displayText(s.name)) : paint.paint('cyan', displayText(s.name)),
    formatCount(s.length),
    s.firstId ?? '-',
    shortTime(s.firstTime),
    s.lastId ?? '-',
    shortTime(s.lastTime),
    s.ttlMs === null ? '-' : formatDuration(s.ttlMs),
    s.sinks.map(displayText).join(',') || '-',
  ]);
  const header = ['STREAM', 'LENGTH', 'FIRST ID', 'FIRST AT (UTC)', 'LAST ID', 'LAST AT (UTC)', 'TTL', 'SINKS'];
  process.stdout.write(`${table(header, rows, { right: [1], paint })}\n`);
  return 0;
}
