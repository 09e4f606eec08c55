import { createInterface } from 'node:readline/promises';
import { Stream } from 'pulse-streaming';
import type { CommandContext } from '../context.js';
import { deadLetterStreamName } from '../deadLetters.js';
import { CliError } from '../errors.js';
import { displayText, plural, printJson } from '../format.js';
import { streamSummary } from '../inspect.js';
import { interruptSignal, shutdownSignal, signalExitCode } from '../lifecycle.js';
import { requireStream } from '../streamChecks.js';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question, { signal: shutdownSignal });
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    return false; // Ctrl-C or end of input
  } finally {
    rl.close();
  }
}

/**
 * `destroy <stream>`: deletes the stream and the library's bookkeeping for it
 * (its dead-letter stream stays). Asks first unless --yes; refuses without
 * --yes when stdin is not a terminal.
 */
export async function destroyCommand(ctx: CommandContext, name: string, options: { yes?: boolean }): Promise<number> {
  if (options.yes !== true && process.stdin.isTTY !== true) {
    throw new CliError(
      `refusing to destroy stream ${displayText(name)} without confirmation: stdin is not a terminal; pass --yes`,
      2,
    );
  }
  const { client } = await ctx.connect();
  await requireStream(client, name);
  if (options.yes !== true) {
    const s = await streamSummary(client, name);
    const what = s ? `${plural(s.length, 'entry', 'entries')}, ${plural(s.sinks.length, 'sink')}` : 'empty';
    if (!(await confirm(`destroy stream ${displayText(name)} (${what})? this cannot be undone [y/N] `))) {
      process.stderr.write('not destroyed\n');
      return shutdownSignal.aborted ? signalExitCode(interruptSignal()) : 1;
    }
  }
  await new Stream(name, client).destroy();
  if (ctx.json) printJson({ destroyed: name });
  else
    process.stdout.write(
      `destroyed stream ${displayText(name)} (its dead-letter stream ${displayText(deadLetterStreamName(name))}, if any, is kept)\n`,
    );
  return 0;
}
