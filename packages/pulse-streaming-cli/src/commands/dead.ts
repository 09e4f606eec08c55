import type { DeadLetter } from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import type { CommandContext } from '../context.js';
import { deadLetterSources, deadLetterStreamName, getDeadLetter, listDeadLetterSummaries, replay } from '../deadLetters.js';
import { canonicalEntryId, isEntryId } from '../entryIds.js';
import { CliError } from '../errors.js';
import {
  displayText,
  idShortTime,
  idTime,
  idTimeText,
  isoTime,
  jsonText,
  lineField,
  payloadDisplay,
  payloadJson,
  plural,
  printJson,
  quoted,
  table,
} from '../format.js';
import { nameList, sinkNames } from '../inspect.js';
import { text } from '../replies.js';
import { refuseBadName, streamOrAbsent } from '../streamChecks.js';

function toJson(d: DeadLetter) {
  return {
    id: d.id,
    // null past what a date holds (an ID's time can be up to 2^64 - 1; d.deadAt is then an Invalid Date).
    deadAt: isoTime(idTime(d.id)),
    event: d.eventName,
    topic: d.topic ?? null,
    headers: d.headers,
    sourceStream: d.sourceStream,
    sourceSink: d.sourceSink,
    sourceId: d.sourceId,
    deliveries: d.deliveries,
    reason: d.reason,
    ...payloadJson(d.payload),
  };
}

/** Headers as `name=value` pairs on one line (nothing in them can break it), `-` for none. */
function headersDisplay(headers: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(headers).map(([k, v]) => `${displayText(k)}=${displayText(v)}`);
  return pairs.length === 0 ? '-' : pairs.join(' ');
}

/** Fails unless the dead-letter stream is absent or a stream. */
async function checkDeadStream(ctx: CommandContext, name: string): Promise<void> {
  const { client } = await ctx.connect();
  await streamOrAbsent(client, streamKey(deadLetterStreamName(name)));
}

/** Fails with the usage exit code (2, as `tail --after`) unless `id` is an entry ID. */
function checkId(what: string, id: string): string {
  if (!isEntryId(id)) throw new CliError(`${what} takes an entry ID like 1700000000000-0, got ${JSON.stringify(id)}`, 2);
  return canonicalEntryId(id);
}

/**
 * `dead <stream> --json`: every letter with its whole payload, as promised,
 * but read one at a time and printed as it comes (the same text as
 * `printJson` of the array), so 100 letters of 5 MB never sit in memory together.
 */
async function printLettersJson(ctx: CommandContext, name: string, ids: readonly string[]): Promise<void> {
  const { client } = await ctx.connect();
  let first = true;
  for (const id of ids) {
    const d = await getDeadLetter(client, name, id);
    if (d === undefined) continue; // replayed or deleted since it was listed
    const item = jsonText(toJson(d), 2).replace(/\n/g, '\n  ');
    process.stdout.write(`${first ? '[\n' : ',\n'}  ${item}`);
    first = false;
  }
  process.stdout.write(first ? '[]\n' : '\n]\n');
}

/** Neither stream `name` nor dead letters of it: a typo. */
function noSuchStream(name: string): CliError {
  return new CliError(`no stream ${displayText(name)} and no dead letters of it: check the name with: pulse-streaming streams`);
}

/** `dead <stream>`: the dead letters of a stream (stream `<stream>:dead`), oldest first. */
export async function deadListCommand(ctx: CommandContext, name: string, options: { count: number }): Promise<number> {
  await checkDeadStream(ctx, name);
  const { client } = await ctx.connect();
  const letters = await listDeadLetterSummaries(client, name, options.count);
  const deadKey = streamKey(deadLetterStreamName(name));
  if (letters.length === 0 && text(await client.call('TYPE', streamKey(name))) === 'none') {
    // None, and no stream of that name: one the library refuses is bad usage (exit 2), as for add.
    refuseBadName(client, name);
    // A typo, as `dead replay`, `stream` and `sinks` say: "no dead letters" and exit 0 read as healthy
    // to a script that counts them (outside trial).
    if (Number(await client.call('EXISTS', deadKey)) === 0) throw noSuchStream(name);
  }
  // How many there are: a list cut at --count says so, also as JSON (on stderr, the output stays an array).
  const total = letters.length < options.count ? letters.length : Number(await client.call('XLEN', deadKey));
  if (ctx.json) {
    await printLettersJson(
      ctx,
      name,
      letters.map((d) => d.id),
    );
    if (total > letters.length) process.stderr.write(`first ${letters.length} of ${total} dead letters; use --count for more\n`);
    return 0;
  }
  if (letters.length === 0) {
    process.stdout.write(
      `no dead letters for stream ${displayText(name)} (stream ${displayText(deadLetterStreamName(name))} is empty or absent)\n`,
    );
    return 0;
  }
  const { paint } = ctx;
  const rows = letters.map((d) => [
    d.id,
    idShortTime(d.id),
    paint.paint('cyan', lineField(d.eventName)),
    d.topic === undefined ? '-' : lineField(d.topic),
    displayText(d.sourceSink) || '-',
    displayText(d.sourceId) || '-',
    String(d.deliveries),
    displayText(d.reason) || '-',
  ]);
  const header = ['ID', 'DEAD AT (UTC)', 'EVENT', 'TOPIC', 'SINK', 'SOURCE ID', 'DELIVERIES', 'REASON'];
  process.stdout.write(`${table(header, rows, { right: [6], paint })}\n`);
  if (total > letters.length)
    process.stdout.write(`${paint.paint('dim', `(first ${letters.length} of ${total}; use --count for more)`)}\n`);
  return 0;
}

/** `dead show <stream> <id>`: one dead letter with its payload. */
export async function deadShowCommand(ctx: CommandContext, name: string, id: string): Promise<number> {
  await checkDeadStream(ctx, name);
  const { client } = await ctx.connect();
  const d = await getDeadLetter(client, name, checkId('<id>', id));
  if (!d) throw new CliError(`no dead letter ${id} in stream ${deadLetterStreamName(name)}`);
  if (ctx.json) {
    printJson(toJson(d));
    return 0;
  }
  const { paint } = ctx;
  const rows: [string, string][] = [
    ['id', d.id],
    ['dead at', idTimeText(d.id)],
    ['event', displayText(d.eventName)],
    ['topic', d.topic === undefined ? '-' : displayText(d.topic)],
    ['headers', headersDisplay(d.headers)],
    ['source stream', displayText(d.sourceStream)],
    ['source sink', displayText(d.sourceSink) || '-'],
    ['source id', displayText(d.sourceId) || '-'],
    ['deliveries', String(d.deliveries)],
    ['reason', displayText(d.reason) || '-'],
    ['payload', payloadDisplay(d.payload)],
  ];
  process.stdout.write(`${rows.map(([k, v]) => `${paint.paint('bold', k.padEnd(14))} ${v}`).join('\n')}\n`);
  return 0;
}

/**
 * `dead replay <stream>`: adds dead letters back to the stream as new events
 * (every sink of it receives them) and removes them from the dead-letter stream.
 */
export async function deadReplayCommand(
  ctx: CommandContext,
  name: string,
  options: { sink?: string; id?: string[] },
): Promise<number> {
  await checkDeadStream(ctx, name);
  const { client } = await ctx.connect();
  // The letters go back into the source stream: it must be one (or absent), not another type of key.
  const sourceType = await streamOrAbsent(client, streamKey(name));
  const of = options.sink === undefined ? '' : ` of sink ${options.sink}`;
  const wanted = options.id === undefined ? undefined : [...new Set(options.id.map((id) => checkId('--id', id)))];
  // Each requested ID that is not replayed is named: replaying the others and exiting 0 would tell
  // the operator that every letter asked for went back. Not replayed are the IDs that are not a
  // letter (a typo, or one replayed meanwhile) or not one of that sink, and the letters that came
  // from another stream (their source_stream): the library adds a letter back only to that stream.
  const sources = wanted === undefined ? [] : await deadLetterSources(client, name, wanted);
  const missing: string[] = [];
  const otherSource: { id: string; sourceStream: string }[] = [];
  for (const [i, id] of (wanted ?? []).entries()) {
    const source = sources[i];
    if (source === undefined || (options.sink !== undefined && source.sourceSink !== options.sink)) missing.push(id);
    else if (source.sourceStream !== name) otherSource.push({ id, sourceStream: source.sourceStream });
  }
  const notFound = [...missing, ...otherSource.map((o) => o.id)];
  const found = wanted?.filter((id) => !notFound.includes(id));
  const notReplayed = (): string => {
    const parts: string[] = [];
    if (missing.length > 0)
      parts.push(`no dead letter ${nameList(missing)}${of} in stream ${displayText(deadLetterStreamName(name))}`);
    if (otherSource.length > 0) {
      const from = [...new Set(otherSource.map((o) => o.sourceStream))]
        .map((s) => (s === '' ? 'no stream' : `stream ${displayText(s)}`))
        .join(', ');
      parts.push(
        `${plural(otherSource.length, 'dead letter')} ${nameList(otherSource.map((o) => o.id))} in stream ${displayText(deadLetterStreamName(name))} came from ${from} (source_stream), not ${displayText(name)}, and a replay adds a letter back only to the stream it came from`,
      );
    }
    return parts.join('; ');
  };
  if (found !== undefined && found.length === 0) {
    throw new CliError(`${notReplayed()}: check the IDs with: pulse-streaming dead ${displayText(name)}`);
  }
  const ids = await replay(client, name, { sink: options.sink, ids: found });
  if (found !== undefined && ids.length < found.length) {
    ctx.note(
      `${plural(found.length - ids.length, 'dead letter')} of those asked for went meanwhile (another replay, or deleted)`,
    );
  }
  if (ids.length === 0 && options.sink !== undefined) {
    // Nothing of that sink: a typo is likelier than a sink that never dead-lettered, unless the sink exists.
    const sinks = await sinkNames(client, name);
    if (!sinks.includes(options.sink)) {
      throw new CliError(
        `stream ${displayText(name)} has no sink ${quoted(options.sink)} and no dead letters from one: check the name (its sinks: ${nameList(sinks)})`,
      );
    }
  }
  // Neither the stream nor dead letters of it: a typo, as `stream` and `destroy` say.
  if (
    ids.length === 0 &&
    sourceType === 'none' &&
    Number(await client.call('EXISTS', streamKey(deadLetterStreamName(name)))) === 0
  )
    throw noSuchStream(name);
  if (ctx.json) {
    printJson({ stream: name, replayed: ids.length, ids, notFound });
  } else if (ids.length === 0) {
    process.stdout.write(`no dead letters${of} to replay for stream ${displayText(name)}\n`);
  } else {
    const shown = ids.length <= 20 ? `: ${ids.join(' ')}` : ` (new IDs ${ids[0]} to ${ids[ids.length - 1]})`;
    process.stdout.write(
      `replayed ${ctx.paint.paint('bold', plural(ids.length, 'dead letter'))}${of} into stream ${displayText(name)}${shown}\n`,
    );
  }
  if (notFound.length > 0) {
    throw new CliError(
      `not replayed: ${notReplayed()} (replayed ${plural(ids.length, 'other')}): check the IDs with: pulse-streaming dead ${displayText(name)}`,
    );
  }
  return 0;
}
