#!/usr/bin/env node
/**
 * The `pulse-streaming` command: inspect and operate pulse streams on any
 * Redis, or watch a live demo on a throwaway server. This file only wires
 * the commands; each lives in `commands/`.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option, InvalidArgumentError as OptionError } from 'commander';
import { InvalidArgumentError } from 'pulse-streaming';
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
import { CliError, describeError } from './errors.js';
import { colorsWanted, painter } from './format.js';
import { exit, installSignalHandlers } from './lifecycle.js';
import { escapeUnsafe } from './safeText.js';

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

function portNumber(what: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > 65535) throw new OptionError(`${what} must be a port number from 0 to 65535`);
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

type Handler = (ctx: CommandContext, args: string[], options: Record<string, unknown>, cmd: Command) => Promise<number>;

/** Commander action that runs `handler` with the command's context, arguments and options. */
function run(handler: Handler): (...args: unknown[]) => Promise<void> {
  return async (...args) => {
    const cmd = args[args.length - 1] as Command;
    const ctx = makeContext(cmd.optsWithGlobals<GlobalOptions>());
    exitCode = await handler(ctx, cmd.processedArgs as string[], cmd.opts(), cmd);
  };
}

/** Levenshtein distance, for "did you mean" on short words. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** The error for `dead <word> <stream>` when `<word>` is not a subcommand of `dead`. */
function unknownDeadSubcommand(list: Command): CliError {
  const explicit = list.parent?.args[0] === 'list';
  if (explicit) return new CliError(`dead list takes one stream name, got ${list.args.length} arguments`, 2);
  const word = list.args[0] ?? '';
  const near = ['list', 'show', 'replay'].find((s) => editDistance(s, word) <= 2);
  return new CliError(
    `unknown dead subcommand '${word}'${near ? ` (did you mean ${near}?)` : ''}: use dead [list] <stream>, dead show <stream> <id> or dead replay <stream>`,
    2,
  );
}

const EXAMPLES = `
Redis: --redis <url>, else REDIS_URL, else a throwaway redis-server started for the
command and removed when it exits (handy for the demo; empty for inspection;
refused by add, whose event would be removed with it).
A node of a Redis Cluster works too: every command then runs on the whole cluster.

Examples:
  $ pulse-streaming demo                          live demo on a throwaway Redis
  $ pulse-streaming demo --trace                  ... with its OpenTelemetry traces
  $ pulse-streaming --redis redis://localhost:6379 streams
  $ pulse-streaming stream orders                 details and sinks of one stream
  $ pulse-streaming tail orders --topic eu        follow events (Ctrl-C to stop)
  $ pulse-streaming add orders created '{"id":1}'
  $ pulse-streaming pending orders billing        unacked events of a sink
  $ pulse-streaming dead orders                   dead letters (stream orders:dead)
  $ pulse-streaming dead replay orders --sink billing
  $ pulse-streaming destroy orders --yes

Exit codes: 0 success, 1 failure (or the demo lost events), 2 bad usage (options, names,
headers or IDs the command refuses before any change), 130 interrupted.`;

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
    // Every command's --help lists --redis, --json, ... (subcommands inherit this setting).
    .configureHelp({ showGlobalOptions: true })
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
    .description('print events as they are added, one line each (one JSON object with --json); Ctrl-C stops')
    .argument('<stream>', 'stream name')
    .option('--topic <topic>', 'only events with this topic')
    .option('--count <n>', 'stop after n events', positiveInt('--count'))
    .option('--from <where>', 'newest (default), oldest, or an ISO 8601 time (UTC unless it gives a zone)')
    .option('--after <id>', 'start after this entry ID')
    .option('--full', 'do not cut lines to the terminal width')
    .option('--headers', "show each event's headers, {name=value, ...} after the topic (--json always has them)")
    .addHelpText(
      'after',
      `
Output: one line per event: time, ID, event, [topic], payload ({headers} before
it with --headers). The payload is
its text when that is safe to print; a JSON string in quotes when it holds a
newline or another control character, or starts with " or base64:; and
base64:<data> when it is not UTF-8. Lines are cut to the terminal width
(or COLUMNS) unless --full; a pipe gets whole lines.
With --json, one object per line, always with these keys:
  {"id","stream","event","topic" (null when none),"createdAt","headers","encoding","payload"}
where headers is an object ({} when none) and encoding is "utf8" (payload is
the text) or "base64" (payload is base64).
Ctrl-C stops: exit code 130.`,
    )
    .action(run((ctx, [name], o) => tailCommand(ctx, name as string, o)));

  program
    .command('add')
    .description('add one event to a stream and print its ID')
    .argument('<stream>', 'stream name')
    .argument('<event>', 'event name')
    .argument('<payload>', 'payload text, or - to read it from stdin (see below)')
    .option('--topic <topic>', 'topic of the event')
    .option('--max-len <n>', 'trim the stream to about n entries (default and 0: no trimming)', nonNegativeInt('--max-len'))
    .option('--keep-newline', 'with payload -: store stdin byte for byte (by default one trailing newline is dropped)')
    .option('--header <name=value>', 'a header of the event (repeatable)', collect)
    .option('--dedup-id <id>', 'add nothing if an add with this ID reached the stream within its dedup window; print that ID')
    .option(
      '--dedup-window-ms <ms>',
      "with --dedup-id: the dedup window (default 120000, 2 min); a longer one the stream's other adds use is kept, and applies to this ID too",
      positiveInt('--dedup-window-ms'),
    )
    .addHelpText(
      'after',
      `
With payload -, the payload is stdin without its one trailing newline (\\n or \\r\\n),
the one echo adds: echo '{"id":1}' | pulse-streaming add orders created - stores {"id":1}.
For binary input that may end with a newline byte, pass --keep-newline.
Headers travel with the event (tail --json shows them): --header traceparent=00-...-01.
As the library's add, a first add to a stream also writes Go Pulse's record of it
(hash pulse:stream:<stream>:lifecycle), so that Go readers can read the stream.`,
    )
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
    // `dead frob orders` lands here (list is the default): say "unknown subcommand", not "too many arguments".
    .allowExcessArguments()
    .action(
      run((ctx, args, o, cmd) => {
        if (args.length > 1 || cmd.args.length > 1) throw unknownDeadSubcommand(cmd);
        return deadListCommand(ctx, args[0] as string, o as { count: number });
      }),
    );
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
    .description(
      'live demo: a producer, a sink of 3 consumer processes and a reader; one consumer process is SIGKILLed midway; proves nothing is lost',
    )
    .option('--rate <n>', 'events published per second', positiveNumber('--rate'), 500)
    .option('--duration <seconds>', 'how long to publish', positiveNumber('--duration'), 20)
    .option('--stream <name>', 'stream to use (default: a new pulse-demo-<random> stream)')
    .option('--keep', 'keep the stream afterwards (default: destroy it)')
    .option(
      '--trace [file]',
      'trace it with OpenTelemetry: print a few traces (send span, process spans of the consumer processes); --trace=FILE also writes every span as JSON',
    )
    .action(run((ctx, _args, o) => demoCommand(ctx, o)));

  program
    .command('ui')
    .description(
      'web dashboard: streams, sinks, lag, pending, dead letters, live tail, /metrics (Ctrl-C stops); --json prints {url, metrics, host, port}',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', portNumber('--port'), 7400)
    .option('--read-only', 'refuse and hide actions (replay, delete, destroy)')
    // From the environment too: a command line is visible to every user of the machine (ps).
    .addOption(
      new Option('--token <token>', 'actions need Authorization: Bearer <token> (the printed URL carries it for the page)').env(
        'PULSE_DASHBOARD_TOKEN',
      ),
    )
    .option(
      '--allowed-host <name...>',
      "beyond 127.0.0.1: host names it answers to besides IP addresses and this machine's name (* for any; others get 421, against DNS rebinding)",
    )
    .action(run((ctx, _args, o) => uiCommand(ctx, o as { host: string; port: number })));

  return program;
}

function report(err: unknown): number {
  const paint = painter(colorsWanted(process.stderr) && !process.argv.includes('--no-color'));
  // The library refuses a bad name, header or ID before any Redis call: bad usage, as for options.
  const code = err instanceof CliError ? err.exitCode : err instanceof InvalidArgumentError ? 2 : 1;
  process.stderr.write(`${paint.paint('red', `error: ${escapeUnsafe(describeError(err))}`)}\n`);
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
  process.stderr.write(`error: ${escapeUnsafe(describeError(err))}\n`);
  process.exit(1);
});
