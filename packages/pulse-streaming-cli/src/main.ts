#!/usr/bin/env node
/**
 * The `pulse-streaming` command: inspect and operate pulse streams on any
 * Redis, or watch a live demo on a throwaway server. This file only wires
 * the commands; each lives in `commands/`.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError as OptionError } from 'commander';
import { addCommand } from './commands/add.js';
import { deadListCommand, deadReplayCommand, deadShowCommand } from './commands/dead.js';
import { demoCommand } from './commands/demo.js';
import { destroyCommand } from './commands/destroy.js';
import { pendingCommand } from './commands/pending.js';
import { sinksCommand, streamCommand } from './commands/stream.js';
import { streamsCommand } from './commands/streams.js';
import { tailCommand } from './commands/tail.js';
import { uiCommand } from './commands/ui.js';
import type { GlobalOptions } from './connection.js';
import { type CommandContext, makeContext } from './context.js';
import { CliError, errorMessage } from './errors.js';
import { colorsWanted, painter } from './format.js';
import { exit, installSignalHandlers } from './lifecycle.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function positiveInt(what: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new OptionError(`${what} must be a whole number >= 1`);
    return n;
  };
}

function nonNegativeInt(what: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new OptionError(`${what} must be a whole number >= 0`);
    return n;
  };
}

function positiveNumber(what: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new OptionError(`${what} must be a number > 0`);
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The exit code of the command that ran. */
let exitCode = 0;

type Handler = (ctx: CommandContext, args: string[], options: Record<string, unknown>) => Promise<number>;

/** Commander action that runs `handler` with the command's context, arguments and options. */
function run(handler: Handler): (...args: unknown[]) => Promise<void> {
  return async (...args) => {
    const cmd = args[args.length - 1] as Command;
    const ctx = makeContext(cmd.optsWithGlobals<GlobalOptions>());
    exitCode = await handler(ctx, cmd.processedArgs as string[], cmd.opts());
  };
}

const EXAMPLES = `
Redis: --redis <url>, else REDIS_URL, else a throwaway redis-server started for the
command and removed when it exits (handy for the demo; empty for inspection).
A node of a Redis Cluster works too: every command then runs on the whole cluster.

Examples:
  $ pulse-streaming demo                          live demo on a throwaway Redis
  $ pulse-streaming --redis redis://localhost:6379 streams
  $ pulse-streaming stream orders                 details and sinks of one stream
  $ pulse-streaming tail orders --topic eu        follow events (Ctrl-C to stop)
  $ pulse-streaming add orders created '{"id":1}'
  $ pulse-streaming pending orders billing        unacked events of a sink
  $ pulse-streaming dead orders                   dead letters (stream orders:dead)
  $ pulse-streaming dead replay orders --sink billing
  $ pulse-streaming destroy orders --yes

Exit codes: 0 success, 1 failure (or the demo lost events), 2 bad usage, 130 interrupted.`;

function buildProgram(): Command {
  const errPaint = painter(colorsWanted(process.stderr) && !process.argv.includes('--no-color'));
  const program = new Command()
    .name('pulse-streaming')
    .description('Inspect and operate pulse streams (Redis Streams used by pulse-streaming and Go Pulse).')
    .version(version(), '-V, --version')
    .option('--redis <url>', 'Redis URL (default: REDIS_URL, else a throwaway redis-server)')
    .option('--cluster', 'the Redis URL is a node of a Redis Cluster (detected with INFO cluster when not given)')
    .option('--json', 'machine-readable JSON output')
    .option('--no-color', 'no colours (also off when NO_COLOR is set or output is not a terminal)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // One line per error: commander puts its suggestion on a second line.
      outputError: (str, write) => write(`${errPaint.paint('red', str.trimEnd().replace(/\n+/g, ' '))}\n`),
    })
    .addHelpText('after', EXAMPLES);

  program
    .command('streams')
    .description('list pulse streams: length, first and last entries, TTL, sinks')
    .action(run((ctx) => streamsCommand(ctx)));

  program
    .command('stream')
    .description('show a stream: length, first and last entries, TTL, dead letters, sinks and consumers')
    .argument('<name>', 'stream name (key pulse:stream:<name>)')
    .action(run((ctx, [name]) => streamCommand(ctx, name as string)));

  program
    .command('sinks')
    .description('show the sinks of a stream: consumers, pending counts, lag, idle times')
    .argument('<stream>', 'stream name')
    .action(run((ctx, [name]) => sinksCommand(ctx, name as string)));

  program
    .command('tail')
    .description('print events as they are added (one JSON object per line with --json); Ctrl-C stops')
    .argument('<stream>', 'stream name')
    .option('--topic <topic>', 'only events with this topic')
    .option('--count <n>', 'stop after n events', positiveInt('--count'))
    .option('--from <where>', 'newest (default), oldest, or an ISO 8601 time')
    .option('--after <id>', 'start after this entry ID')
    .action(run((ctx, [name], o) => tailCommand(ctx, name as string, o)));

  program
    .command('add')
    .description('add one event to a stream and print its ID')
    .argument('<stream>', 'stream name')
    .argument('<event>', 'event name')
    .argument('<payload>', 'payload text, or - to read it from stdin')
    .option('--topic <topic>', 'topic of the event')
    .option('--max-len <n>', 'trim the stream to about n entries (default: no trimming)', nonNegativeInt('--max-len'))
    .action(run((ctx, [name, ev, payload], o) => addCommand(ctx, name as string, ev as string, payload as string, o)));

  program
    .command('pending')
    .description('show the events a sink delivered and are not acked yet (XPENDING)')
    .argument('<stream>', 'stream name')
    .argument('<sink>', 'sink name')
    .option('--count <n>', 'most entries to list', positiveInt('--count'), 100)
    .option('--consumer <name>', 'only this consumer')
    .action(run((ctx, [name, sink], o) => pendingCommand(ctx, name as string, sink as string, o as { count: number })));

  const dead = program
    .command('dead')
    .description('dead letters of a stream (stream <stream>:dead): list (default), show, replay');
  dead
    .command('list', { isDefault: true })
    .description('list the dead letters of a stream, oldest first')
    .argument('<stream>', 'stream name')
    .option('--count <n>', 'most entries to list', positiveInt('--count'), 100)
    .action(run((ctx, [name], o) => deadListCommand(ctx, name as string, o as { count: number })));
  dead
    .command('show')
    .description('show one dead letter with its payload')
    .argument('<stream>', 'stream name')
    .argument('<id>', 'entry ID in the dead-letter stream')
    .action(run((ctx, [name, id]) => deadShowCommand(ctx, name as string, id as string)));
  dead
    .command('replay')
    .description('add dead letters back to their source stream (every sink of it sees them) and delete them')
    .argument('<stream>', 'stream name')
    .option('--sink <sink>', 'only dead letters of this sink')
    .option('--id <id>', 'only this dead-letter ID (repeatable)', collect)
    .action(run((ctx, [name], o) => deadReplayCommand(ctx, name as string, o)));

  program
    .command('destroy')
    .description("delete a stream and the library's bookkeeping for it (its dead-letter stream stays)")
    .argument('<stream>', 'stream name')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .action(run((ctx, [name], o) => destroyCommand(ctx, name as string, o)));

  program
    .command('demo')
    .description('live demo: a producer, a 3-consumer sink and a reader; one consumer is killed midway; proves nothing is lost')
    .option('--rate <n>', 'events published per second', positiveNumber('--rate'), 500)
    .option('--duration <seconds>', 'how long to publish', positiveNumber('--duration'), 20)
    .option('--stream <name>', 'stream to use (default: a new pulse-demo-<random> stream)')
    .option('--keep', 'keep the stream afterwards (default: destroy it)')
    .action(run((ctx, _args, o) => demoCommand(ctx, o)));

  program
    .command('ui')
    .description('web dashboard: streams, sinks, lag, pending, dead letters, live tail, /metrics (Ctrl-C stops)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', nonNegativeInt('--port'), 7400)
    .option('--read-only', 'refuse and hide actions (replay, delete, destroy)')
    .option('--token <token>', 'actions need Authorization: Bearer <token> (the printed URL carries it for the page)')
    .action(run((ctx, _args, o) => uiCommand(ctx, o as { host: string; port: number })));

  return program;
}

function report(err: unknown): number {
  const paint = painter(colorsWanted(process.stderr) && !process.argv.includes('--no-color'));
  const code = err instanceof CliError ? err.exitCode : 1;
  process.stderr.write(`${paint.paint('red', `error: ${errorMessage(err)}`)}\n`);
  return code;
}

async function main(): Promise<void> {
  installSignalHandlers();
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // `... | head`: the reader went away; stop quietly.
    if (err.code === 'EPIPE') process.exit(0);
  });
  let code: number;
  try {
    await buildProgram().parseAsync(process.argv);
    code = exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (or the help): 0 for help and version, 2 for bad usage.
      code = err.exitCode === 0 ? 0 : 2;
    } else {
      code = report(err);
    }
  }
  await exit(code);
}

main().catch((err: unknown) => {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  process.exit(1);
});
