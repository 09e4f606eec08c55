// A chaos consumer: one child process with one sink instance (or reader) of
// the built library. It reports every handled event to the parent over IPC
// before acking it (a kill between report and ack can only make a duplicate),
// and reports stats (counters, RSS, buffered events, retry warnings per second)
// every 200 ms. Config comes from the CHAOS_WORKER environment variable
// (see WorkerConfig in chaos/consumers.ts).
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { SinkEvent, Stream } from '../packages/pulse-streaming/dist/esm/index.js';
import { SinkHolds } from '../packages/pulse-streaming/dist/esm/internal/sinkHolds.js';
import { Subscription } from '../packages/pulse-streaming/dist/esm/subscription.js';
import { classifyLine } from './logLines.mjs';

const cfg = JSON.parse(process.env.CHAOS_WORKER ?? '{}');
const stopping = new AbortController();
// A process-local sequence stamped on every report: orders what this process
// did (a dead letter before a hand-out) even within one millisecond.
let tick = 0;
const clock = () => ({ ts: Date.now(), n: ++tick });

function send(msg) {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

function fatal(err) {
  const text = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err);
  void send({ t: 'fatal', err: text }).finally(() => process.exit(70));
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
process.on('disconnect', () => process.exit(0));

// ---- the life of each copy of an event in this process, for the ledger ----
// Wrapping the built library's own methods (chaos only: nothing of this is public):
// when a copy was read or claimed from Redis (its push into a subscription buffer)
// and how long ago the sink believed it held then; when an ownership hold
// (`holdOwned`, which keeps it ours or drops it) or a check before hand-out
// (`recheck`) last covered it; when an in-progress touch for it last reached Redis.
const life = new WeakMap();
const lastHold = new Map();
const lastRecheck = new Map();
const lastTouch = new Map();
const forget = (id) => {
  lastHold.delete(id);
  lastRecheck.delete(id);
  lastTouch.delete(id);
};
const origPush = Subscription.prototype.push;
Subscription.prototype.push = function push(item, heldAt) {
  if (item && typeof item === 'object' && !life.has(item)) life.set(item, { rd: Date.now(), ha: heldAt ?? 0 });
  return origPush.call(this, item, heldAt);
};
const origHoldOwned = SinkHolds.prototype.holdOwned;
SinkHolds.prototype.holdOwned = async function holdOwned(name, ids) {
  const at = Date.now();
  const r = await origHoldOwned.call(this, name, ids);
  for (const id of ids) lastHold.set(id, at);
  return r;
};
const origRecheck = SinkHolds.prototype.recheck;
SinkHolds.prototype.recheck = async function recheck(items) {
  const at = Date.now();
  for (const ev of items) lastRecheck.set(ev.id, at);
  return origRecheck.call(this, items);
};
const origTouch = SinkHolds.prototype.touch;
SinkHolds.prototype.touch = async function touch(conn, streamName, idleMs, ids, nack, keepGoneMs) {
  const at = Date.now();
  const r = await origTouch.call(this, conn, streamName, idleMs, ids, nack, keepGoneMs);
  // An in-progress touch (idle 0, no nack) that Redis ran: sent at `at`, done now.
  if (idleMs === 0 && !nack) for (const id of ids) lastTouch.set(id, at);
  return r;
};
/** What the ledger gets of a copy at hand-out: read, believed held, last hold, last check before hand-out. */
function lifeOf(ev) {
  const l = life.get(ev);
  return { rd: l?.rd ?? 0, ha: l?.ha ?? 0, lh: lastHold.get(ev.id) ?? 0, rc: lastRecheck.get(ev.id) ?? 0 };
}
// Gaps in this process's own event loop (SIGSTOP, or a starved host), reported as they end: those of
// half a grace period or more (300 ms at most) can let its holds lapse.
const GAP_MS = Math.min(300, Math.max(50, Math.floor((cfg.graceMs ?? 600) / 2)));
let beat = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - beat > GAP_MS) void send({ t: 'g', from: beat, to: now });
  beat = now;
}, 25).unref();
// When each ack settled (ok: Redis took it; not: it failed), from process() and the for await loop alike.
const origAck = SinkEvent.prototype.ack;
SinkEvent.prototype.ack = function ack() {
  const id = this.id;
  const p = origAck.call(this);
  p.then(
    () => void send({ t: 'a', id, at: Date.now(), ok: true }),
    () => void send({ t: 'a', id, at: Date.now(), ok: false }),
  ).finally(() => forget(id));
  return p;
};
const origInProgress = SinkEvent.prototype.inProgress;
SinkEvent.prototype.inProgress = async function inProgress() {
  const at = Date.now();
  await origInProgress.call(this);
  lastTouch.set(this.id, at);
};

// ---- logger: counts warnings, 'retrying' lines per wall-clock second, and lost IDs ----
const warns = {};
const samples = [];
const lostIds = [];
let retrySecond = 0;
let retryInSecond = 0;
let retryMaxPerSec = 0;

function line(level, obj, msg) {
  if (level !== 'warn' && level !== 'error') return;
  const key = `${level}: ${msg ?? ''}`;
  warns[key] = (warns[key] ?? 0) + 1;
  if (samples.length < 20) samples.push(`${key} ${JSON.stringify(obj).slice(0, 300)}`);
  // A command that holds or settles events in hand failed (ack, in-progress touch, keep-alive with its
  // holds, ownership check): when, for the ledger. Reads and claims do not hold what is in hand.
  if (level === 'warn' && /failed/.test(msg ?? '') && !/^(read|reclaim) failed/.test(msg ?? ''))
    void send({ t: 'f', at: Date.now() });
  if (msg?.includes('retrying')) {
    const sec = Math.floor(Date.now() / 1000);
    if (sec !== retrySecond) {
      retrySecond = sec;
      retryInSecond = 0;
    }
    retryInSecond++;
    retryMaxPerSec = Math.max(retryMaxPerSec, retryInSecond);
  }
  // Losses and dead letters, as they are logged, stamped with this process's clock.
  // By ID ('events trimmed or deleted before they were acked', ...), or only a count.
  // The stats follow at once, so a kill -9 right after does not hide the counters.
  const c = classifyLine(msg ?? '', obj);
  if (c?.kind === 'dead' && c.ids) void send({ t: 'd', ids: c.ids, msg: msg ?? '', ...clock() });
  if (c?.kind === 'lost') {
    lostIds.push(...c.ids);
    void send({ t: 'l', ids: c.ids, msg: msg ?? '', ...clock() });
  }
  if (c?.kind === 'lostCount') void send({ t: 'lc', count: c.count, msg: msg ?? '', ...clock() });
  if (c) queueMicrotask(() => void stats(false));
}
const logger = {
  debug: () => {},
  info: () => {},
  warn: (obj, msg) => line('warn', obj, msg),
  error: (obj, msg) => line('error', obj, msg),
  child: () => logger,
};

// ---- client ----
// When the user's client (acks, in-progress touches, nacks travel on it) was cut off from Redis, sent as it comes back.
let downSince = 0;
function connDown() {
  if (downSince === 0) downSince = Date.now();
}
function connUp() {
  if (downSince === 0) return;
  void send({ t: 'c', from: downSince, to: Date.now() });
  downSince = 0;
}

async function connectClient() {
  if (cfg.client === 'node-redis') {
    const { createClient } = await import('redis');
    const c = createClient({ url: cfg.url, socket: { reconnectStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 5), 1000) } });
    c.on('error', () => {});
    c.on('end', connDown);
    c.on('error', connDown);
    c.on('ready', connUp);
    await c.connect();
    return { redis: c, close: () => c.destroy() };
  }
  const c = new Redis(cfg.url, {
    lazyConnect: true,
    connectionName: `chaos:worker:${process.pid}`,
    maxRetriesPerRequest: 3,
    retryStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 5), 1000),
  });
  c.on('error', () => {});
  c.on('close', connDown);
  c.on('ready', connUp);
  await c.connect();
  return { redis: c, close: () => c.disconnect() };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let work = cfg.workMs ?? [0, 0];
const workTime = () => work[0] + Math.random() * (work[1] - work[0]);
let cured = false;
/** Events whose sequence number is `slowEvery` apart take `slowMs` (a handler slower than the grace period). */
const workFor = (seq) =>
  cfg.slowEvery > 0 && seq >= 0 && seq % cfg.slowEvery === (cfg.slowPhase ?? 0)
    ? cfg.slowMs[0] + Math.random() * (cfg.slowMs[1] - cfg.slowMs[0])
    : workTime();
const isPoison = (ev) => !cured && cfg.poisonName !== undefined && ev.eventName === cfg.poisonName;
const ackDelay = () => (cfg.ackDelayMs ? cfg.ackDelayMs[0] + Math.random() * (cfg.ackDelayMs[1] - cfg.ackDelayMs[0]) : 0);

/** The producer's payloads are `<seq>` or `<seq>.<padding>`; anything else is -1. */
function seqOf(payload) {
  const dot = payload.indexOf(46);
  const head = payload.subarray(0, dot < 0 ? Math.min(payload.length, 20) : dot).toString('latin1');
  return /^\d+$/.test(head) ? Number(head) : -1;
}

/** Reports a finished delivery; `handed` is the clock when the handler (or loop) got the event. */
function report(ev, fail, handed, lifeAt) {
  const seq = seqOf(ev.payload);
  const now = clock();
  const h = handed ?? now;
  const msg = { t: 'h', id: ev.id, seq, dc: ev.deliveryCount, st: h.ts, sn: h.n, ts: now.ts, n: now.n };
  if (lifeAt) Object.assign(msg, lifeAt, { ip: lastTouch.get(ev.id) ?? 0 });
  if (fail) msg.fail = true;
  if (seq < 0 || ev.eventName !== 'ev') {
    msg.x = { en: ev.eventName, len: ev.payload.length, sha: createHash('sha1').update(ev.payload).digest('hex') };
  }
  return send(msg);
}

// ---- stats ----
let rssBaseline = process.memoryUsage().rss;
let rssMax = 0;
let sizeMax = 0;
let sink;
let sub;
let reader;

function stats(final) {
  const rss = process.memoryUsage().rss;
  rssMax = Math.max(rssMax, rss);
  const msg = {
    t: 's',
    final,
    consumer: sink?.consumerName ?? '',
    counters: sink ? sink.counters : { delivered: 0, redelivered: 0, acked: 0, deadLettered: 0, lost: 0, filtered: 0 },
    // Readers count what they delivered and what they found trimmed or deleted (when the library has reader.counters).
    readerCounters: reader?.counters ? { ...reader.counters } : undefined,
    rss,
    rssBaseline,
    rssMax,
    sizeMax,
    retryMaxPerSec,
    warns,
    lostIds,
    samples,
  };
  return send(msg);
}

process.on('message', (m) => {
  if (m?.t === 'stop') stopping.abort();
  else if (m?.t === 'work') work = m.workMs;
  else if (m?.t === 'cure') cured = true;
});

/** Tries `fn` for up to 15 s: a restarted worker may meet Redis restarting too (LOADING), as a user's process would. */
async function retrying(fn) {
  const deadline = Date.now() + 15_000;
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(Math.min(50 * 2 ** i, 1000));
    }
  }
}

async function main() {
  const client = await retrying(connectClient);
  const stream = new Stream(cfg.stream, client.redis, { maxLen: 0, logger });
  let consumer;
  let run;
  if (cfg.mode === 'reader') {
    reader = await retrying(() =>
      stream.newReader({
        startAt: 'oldest',
        blockMs: cfg.blockMs,
        maxPolled: cfg.maxPolled,
        bufferSize: cfg.bufferSize,
      }),
    );
    consumer = `reader:${process.pid}`;
    run = async () => {
      const s = reader.subscribe({ signal: stopping.signal });
      for await (const ev of s) await report(ev, false, clock());
      await reader.close();
    };
  } else {
    const options = {
      startAt: 'oldest',
      ackGracePeriodMs: cfg.graceMs,
      blockMs: cfg.blockMs,
      maxPolled: cfg.maxPolled,
      bufferSize: cfg.bufferSize,
    };
    if (cfg.maxDeliveries) options.maxDeliveries = cfg.maxDeliveries;
    sink = await retrying(() => stream.newSink(cfg.sink, options));
    consumer = sink.consumerName;
    // With pauseEvery, the consumer leaves every so many events (an aborted process(), a break out of
    // the for await loop) and comes back: at once, or after 1.5 x grace every third time.
    let pauses = 0;
    const comeBack = async () => {
      if (stopping.signal.aborted || !(cfg.pauseEvery > 0)) return false;
      if (++pauses % 3 === 0) await sleep(1.5 * cfg.graceMs);
      return !stopping.signal.aborted;
    };
    let taken = 0;
    const pauseNow = () => cfg.pauseEvery > 0 && ++taken % cfg.pauseEvery === 0;
    if (cfg.mode === 'process') {
      run = async () => {
        do {
          const pause = new AbortController();
          const stop = () => pause.abort();
          stopping.signal.addEventListener('abort', stop, { once: true });
          if (stopping.signal.aborted) pause.abort();
          await sink.process(
            async (ev) => {
              if (pauseNow()) pause.abort();
              const handed = clock();
              const lf = lifeOf(ev);
              const t = workFor(seqOf(ev.payload));
              if (t > 0) await sleep(t);
              const poison = isPoison(ev);
              const flaky = cfg.failEvery > 0 && ev.deliveryCount === 1 && seqOf(ev.payload) % cfg.failEvery === 0;
              await report(ev, poison || flaky, handed, lf);
              if (poison) throw new Error('poison event');
              if (flaky) throw new Error('first delivery fails');
              // Time between the report and the ack, where a kill makes a duplicate.
              const a = ackDelay();
              if (a > 0) await sleep(a);
            },
            { concurrency: cfg.concurrency, signal: pause.signal },
          );
          stopping.signal.removeEventListener('abort', stop);
        } while (await comeBack());
        await sink.close();
      };
    } else {
      run = async () => {
        let paused;
        do {
          paused = false;
          sub = sink.subscribe({ signal: stopping.signal });
          for await (const ev of sub) {
            const handed = clock();
            const lf = lifeOf(ev);
            sizeMax = Math.max(sizeMax, sub.size);
            const t = workFor(seqOf(ev.payload));
            // Long work in a for await loop tells the sink it is still busy with this event (SEMANTICS section 9).
            // The report to the parent is part of the work: it waits for the IPC channel, which a busy parent drains late.
            const keep = cfg.inProgressMs > 0 ? setInterval(() => ev.inProgress().catch(() => {}), cfg.inProgressMs) : undefined;
            if (t > 0) await sleep(t);
            if (isPoison(ev)) {
              await report(ev, true, handed, lf);
              clearInterval(keep);
              ev.nack().catch((err) => line('warn', { err: String(err) }, 'chaos worker: nack failed'));
              continue;
            }
            await report(ev, false, handed, lf);
            clearInterval(keep);
            ev.ack().catch((err) => line('warn', { err: String(err) }, 'chaos worker: ack failed'));
            if (pauseNow()) {
              paused = true;
              break;
            }
          }
        } while (paused && (await comeBack()));
        await sink.close();
      };
    }
  }
  rssBaseline = process.memoryUsage().rss;
  const timer = setInterval(() => {
    if (sub) sizeMax = Math.max(sizeMax, sub.size);
    void stats(false);
  }, 200);
  const sampler = cfg.sample
    ? setInterval(() => {
        if (sub) sizeMax = Math.max(sizeMax, sub.size);
        rssMax = Math.max(rssMax, process.memoryUsage().rss);
      }, 5)
    : undefined;
  await send({ t: 'ready', consumer, rss: rssBaseline });
  await run();
  clearInterval(timer);
  clearInterval(sampler);
  await stats(true);
  client.close();
  process.exit(0);
}

main().catch(fatal);
