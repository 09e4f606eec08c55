import type { CommandContext } from '../context.js';
import { pendingIdleText } from '../duration.js';
import { displayText, formatCount, printJson, table } from '../format.js';
import { pendingReport } from '../inspect.js';
import { requireStream } from '../streamChecks.js';

/** Options of `pending`. */
export interface PendingOptions {
  readonly count: number;
  readonly consumer?: string;
}

/** `pending <stream> <sink>`: the events a sink delivered and has not had acked yet (XPENDING). */
export async function pendingCommand(ctx: CommandContext, name: string, sink: string, options: PendingOptions): Promise<number> {
  const { client } = await ctx.connect();
  await requireStream(client, name);
  const report = await pendingReport(client, name, sink, options);
  if (ctx.json) {
    // Every entry with the same keys (`dueInMs` null when not nacked), as `tail --json` does.
    printJson({ ...report, entries: report.entries.map((e) => ({ ...e, dueInMs: e.dueInMs ?? null })) });
    return 0;
  }
  const { paint } = ctx;
  const out = [
    `${paint.paint('bold', formatCount(report.total))} pending in sink ${paint.paint('cyan', displayText(sink))} of stream ${paint.paint('cyan', displayText(name))}` +
      (report.total > 0 ? ` (IDs ${report.firstId} to ${report.lastId})` : ''),
  ];
  if (report.consumers.length > 0) {
    out.push(
      '',
      table(
        ['CONSUMER', 'PENDING'],
        report.consumers.map((c) => [displayText(c.name), formatCount(c.pending)]),
        { right: [1], paint },
      ),
    );
  }
  if (report.entries.length > 0) {
    const rows = report.entries.map((e) => [
      e.id,
      displayText(e.consumer),
      pendingIdleText(e),
      e.deliveries > 1 ? paint.paint('yellow', String(e.deliveries)) : String(e.deliveries),
    ]);
    out.push('', table(['ID', 'CONSUMER', 'IDLE', 'DELIVERIES'], rows, { right: [2, 3], paint }));
    // With --consumer the list holds that consumer's entries only: compare with its own count, not the sink's.
    const held =
      options.consumer === undefined
        ? report.total
        : (report.consumers.find((c) => c.name === options.consumer)?.pending ?? report.entries.length);
    if (report.entries.length < held) out.push(paint.paint('dim', `(first ${report.entries.length}; use --count for more)`));
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
