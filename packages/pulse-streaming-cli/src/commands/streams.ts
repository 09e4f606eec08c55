import { streamKey } from 'pulse-streaming/keys';
import { displayUrl } from '../connection.js';
import type { CommandContext } from '../context.js';
import { describeError } from '../errors.js';
import { displayText, formatCount, formatDuration, idShortTime, plural, printJson, table } from '../format.js';
import { listStreamNames, type StreamSummary, streamSummary } from '../inspect.js';

/** A stream that was listed but could not be read: its row says why instead of ending the listing. */
interface UnreadStream {
  name: string;
  key: string;
  /** Why it could not be read. */
  error: string;
}

type Row = StreamSummary | UnreadStream;

const unread = (row: Row): row is UnreadStream => 'error' in row;

/**
 * The summary of each stream; one that fails (another type of key since the
 * scan, a permission, ...) becomes a row with its error: one bad stream must
 * not hide every other one from an operator in an incident.
 */
async function summaries(ctx: CommandContext, names: string[]): Promise<Row[]> {
  const { client } = await ctx.connect();
  const found = await Promise.all(
    names.map((name) =>
      streamSummary(client, name).then(
        (s): Row | undefined => s,
        (err: unknown): Row => ({ name, key: streamKey(name), error: describeError(err) }),
      ),
    ),
  );
  return found.filter((s): s is Row => s !== undefined);
}

/**
 * `streams`: every pulse stream on the server (every master of a cluster),
 * with length, first and last entries, TTL and sinks. A stream that cannot
 * be read is listed with its error (`error` in --json); the exit code is 0 still.
 */
export async function streamsCommand(ctx: CommandContext): Promise<number> {
  const { client, url, cluster } = await ctx.connect();
  const streams = await summaries(ctx, await listStreamNames(client));
  const failed = streams.filter(unread).length;
  if (failed > 0)
    ctx.note(`${plural(failed, 'stream')} could not be read: see the error in ${failed === 1 ? 'its row' : 'their rows'}`);
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
  const rows = streams.map((s) => {
    // The error in the last column, which sets no other column's width.
    if (unread(s))
      return [paint.paint('red', displayText(s.name)), '?', '-', '-', '-', '-', '-', paint.paint('red', `error: ${s.error}`)];
    return [
      s.isDeadLetterStream ? paint.paint('yellow', displayText(s.name)) : paint.paint('cyan', displayText(s.name)),
      formatCount(s.length),
      s.firstId ?? '-',
      s.firstId === null ? '-' : idShortTime(s.firstId),
      s.lastId ?? '-',
      s.lastId === null ? '-' : idShortTime(s.lastId),
      s.ttlMs === null ? '-' : formatDuration(s.ttlMs),
      s.sinks.map(displayText).join(',') || '-',
    ];
  });
  const header = ['STREAM', 'LENGTH', 'FIRST ID', 'FIRST AT (UTC)', 'LAST ID', 'LAST AT (UTC)', 'TTL', 'SINKS'];
  process.stdout.write(`${table(header, rows, { right: [1], paint })}\n`);
  return 0;
}
