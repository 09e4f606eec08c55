/**
 * A sink's scripts of several keys while their hash slot migrates
 * (resharding, outside review AO). Redis refuses a command of several keys
 * unless the node has them all (TRYAGAIN; ioredis: "Too many Cluster
 * redirections"), and a key that does not exist yet (a new sink's consumers
 * set, the delays set of a sink with nothing delayed) counts as missing: the
 * join (`createGroup`), a nack (`touch`) and the claims (`claim`) were
 * refused for as long as the migration stayed open, so `newSink` and
 * `addStream` rejected, a nack rejected and `process()` stopped handling
 * events, and nothing nacked came back until the migration ended. Nothing of
 * a refused script ran: it is run again with the stream's key alone, which
 * the client sends on with ASK, and the other keys are written by scripts of
 * their own key (one key: served wherever it is).
 */
import { type Arg, type Connection, evalScript } from './driver.js';
import { NOW } from './lua.js';
import { refusedAsMigrating } from './migratingRead.js';
import { Script } from './script.js';
import { FOLLOW } from './scripts.js';

/**
 * One bookkeeping key of a join: the sink registry (`sadd`) or the
 * consumers set (`zadd`, at Redis' time), following the stream's time to
 * live as `createGroup` makes them.
 * KEYS: the key. ARGV: 'sadd' or 'zadd', member, the stream's PTTL.
 */
const joinKey = new Script(
  'joinKey',
  `${FOLLOW}
if ARGV[1] == 'sadd' then
  redis.call('SADD', KEYS[1], ARGV[2])
else
  ${NOW}
  redis.call('ZADD', KEYS[1], now, ARGV[2])
end
follow(tonumber(ARGV[3]), 0, {KEYS[1]})
return 1`,
);

/**
 * A sink's delays set on its own: due times set `ms` from now (`add`) or
 * removed (`rem`); expires as `EXPIRE_DELAYS` makes it, from the stream's
 * PTTL given (the stream's key is not among its keys).
 * KEYS: delays. ARGV: 'add' or 'rem', ms, the stream's PTTL, ids...
 */
const delaysAlone = new Script(
  'delaysAlone',
  `if ARGV[1] == 'rem' then
  for i = 4, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
  return 0
end
${NOW}
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[i]) end
if tonumber(ARGV[3]) == -1 then
  redis.call('PERSIST', KEYS[1])
else
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
  if last then redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(last) + 1)) end
end
return 1`,
);

/** The stream's PTTL (-2 missing, -1 none), asked by its key (ASK followed). */
async function pttlOf(conn: Connection, streamKey: string): Promise<number> {
  return Number(await conn.send(['PTTL', streamKey], streamKey));
}

/** Puts `ids` in the delays set `ms` from now, on its key alone (as `touch` keeps an event deleted while handled). */
export async function delayAlone(
  conn: Connection,
  keys: { stream: string; delays: string },
  ms: number,
  ids: readonly string[],
): Promise<void> {
  await evalScript(conn, delaysAlone, [keys.delays], ['add', ms, await pttlOf(conn, keys.stream), ...ids]);
}

/**
 * `createGroup` refused as its slot migrates: run with the stream's key
 * alone (group, stream, consumer in the group), then the sink registry and
 * the consumers set each on their own. Not atomic: a join cut between them
 * leaves a group with its consumer but without those entries, which the
 * consumer's keep-alives (consumers) and the next join (registry) write.
 */
export async function joinOneByOne(
  conn: Connection,
  script: Script,
  keys: { stream: string; registry: string; consumers: string },
  args: { sinkName: string; consumer: string; rest: readonly Arg[] },
): Promise<number> {
  const created = Number(await evalScript(conn, script, [keys.stream], args.rest));
  const pttl = await pttlOf(conn, keys.stream);
  await evalScript(conn, joinKey, [keys.registry], ['sadd', args.sinkName, pttl]);
  await evalScript(conn, joinKey, [keys.consumers], ['zadd', args.consumer, pttl]);
  return created;
}

/** What a `touch` does (see scripts.ts): its reply. */
export interface TouchReply {
  gone: unknown[];
  vanished: unknown[];
  mine: unknown[];
  /** The delivery count of each of `mine`, in order. */
  counts: unknown[];
}

/**
 * `touch` refused as its slot migrates: run with the stream's key alone,
 * the delays set written on its own. A nack's delay is set before the event
 * is given back (a claim between the two must find it delayed), and taken
 * back after for those not given back; a nack without a delay clears an
 * earlier one after, as do nacks of events found gone; an in-progress
 * touch keeps those found deleted in the set, as `touch` does.
 */
export async function touchOneByOne(
  conn: Connection,
  script: Script,
  keys: { stream: string; delays: string },
  args: readonly Arg[],
  ids: readonly string[],
  op: { nack: boolean; delayMs: number | undefined; keepGoneMs: number | undefined },
): Promise<TouchReply> {
  const delays = (how: 'add' | 'rem', ms: number, which: readonly string[], pttl: number) =>
    which.length === 0 ? Promise.resolve() : evalScript(conn, delaysAlone, [keys.delays], [how, ms, pttl, ...which]);
  const delayed = op.nack && op.delayMs !== undefined;
  const pttl = delayed || (!op.nack && op.keepGoneMs !== undefined) ? await pttlOf(conn, keys.stream) : -2;
  if (delayed) await delays('add', op.delayMs ?? 0, ids, pttl);
  const [gone, vanished, mine, counts] = (await evalScript(conn, script, [keys.stream], args)) as [
    unknown[],
    unknown[],
    unknown[],
    unknown[],
  ];
  const mineIds = new Set(mine.map(String));
  if (delayed)
    await delays(
      'rem',
      0,
      ids.filter((id) => !mineIds.has(id)),
      pttl,
    );
  else if (op.nack) await delays('rem', 0, [...mineIds, ...gone.map(String)], pttl);
  else if (op.keepGoneMs !== undefined) await delays('add', op.keepGoneMs, gone.map(String), pttl);
  return { gone, vanished, mine, counts };
}

/**
 * Runs `touch` over the stream and the delays set, or when Redis refuses it
 * as the slot migrates (the delays set missing: nothing delayed), with
 * {@link touchOneByOne}.
 */
export async function touchOrOneByOne(
  conn: Connection,
  script: Script,
  keys: { stream: string; delays: string },
  args: readonly Arg[],
  ids: readonly string[],
  op: { nack: boolean; delayMs: number | undefined; keepGoneMs: number | undefined },
): Promise<TouchReply> {
  try {
    const [gone, vanished, mine, counts] = (await evalScript(conn, script, [keys.stream, keys.delays], args)) as unknown[][];
    return { gone: gone ?? [], vanished: vanished ?? [], mine: mine ?? [], counts: counts ?? [] };
  } catch (err) {
    if (!refusedAsMigrating(err)) throw err;
    return touchOneByOne(conn, script, keys, args, ids, op);
  }
}

/**
 * `claim` refused as its slot migrates: when the sink's delays set does not
 * exist (nothing delayed: the usual case, and a key that does not exist
 * counts as missing), run without it; undefined when it exists (its keys
 * then wait for the migration to move them all, and the claim is tried
 * again at the next sweep). The two are not atomic: a delay set between
 * them may be ignored once (the event comes back early, never lost).
 */
export async function claimWithoutDelays(
  conn: Connection,
  script: Script,
  keys: { stream: string; dead: string; delays: string },
  args: readonly Arg[],
): Promise<unknown | undefined> {
  if (Number(await conn.send(['EXISTS', keys.delays], keys.delays)) !== 0) return undefined;
  return evalScript(conn, script, [keys.stream, keys.dead], args);
}

/**
 * The stream's part of `leave` (see sinkLeave.ts) on its key alone: leaves
 * the group unless this consumer owns pending entries (-1), else 0.
 * KEYS: stream. ARGV: group, self.
 */
const leaveAlone = new Script(
  'leaveAlone',
  `local ok, mine = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if not ok then return 0 end
if #mine > 0 then return -1 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 0`,
);

/** Deletes KEYS[1] (a lease) when it holds ARGV[1]. */
const dropIfHeld = new Script(
  'dropIfHeld',
  `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`,
);

/**
 * `leave` refused as its slot migrates: the lease, the consumers set and
 * the group each on their own key. The group is not destroyed here (with
 * `destroyIfLast`, whether no instance is live is in another key, and a
 * join between the two would lose its consumer): -1, left behind, as when
 * events are pending, and a later sweep leaves it again and destroys it
 * once the migration ended.
 */
export async function leaveOneByOne(
  conn: Connection,
  keys: { stream: string; consumers: string; lease: string },
  args: { group: string; self: string; destroyIfLast: boolean },
): Promise<number> {
  await evalScript(conn, dropIfHeld, [keys.lease], [args.self]);
  await conn.send(['ZREM', keys.consumers, args.self], keys.consumers);
  const left = Number(await evalScript(conn, leaveAlone, [keys.stream], [args.group, args.self]));
  return args.destroyIfLast ? -1 : left;
}
