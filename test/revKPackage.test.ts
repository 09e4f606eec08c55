/**
 * Review K: the package as a backend engineer adopts it, packed and installed
 * as test/package.test.ts does (npm pack into a temp dir, the clients beside
 * it, compiled with the repository's tsc, run with node). One app per file.
 *
 * - The dual-package hazard: a CommonJS dependency of an ESM app uses
 *   `require('pulse-streaming')` (the CJS build) while the app imports the
 *   ESM build; errors created by one build are checked with the classes of
 *   the other (the README's own `err instanceof DecodeError`).
 * - TypeScript users with `exactOptionalPropertyTypes`: option objects whose
 *   properties may be `undefined` (read from config), which the runtime
 *   accepts as "the default".
 * - `new Stream<Events>(name, redis)` without a codec: typed at compile time,
 *   untyped at run time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '..');
const PKG = join(REPO, 'packages/pulse-streaming');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');

let app: string;

function run(cmd: string, args: string[], cwd = app): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 25_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'pulse-revk-'));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', app], { cwd: PKG, encoding: 'utf8' }));
  const lib = join(app, 'node_modules/pulse-streaming');
  mkdirSync(lib, { recursive: true });
  execFileSync('tar', ['-xzf', join(app, packed[0].filename), '-C', lib, '--strip-components=1']);
  for (const dep of ['redis', '@redis', 'ioredis', '@types', '@opentelemetry']) {
    symlinkSync(join(REPO, 'node_modules', dep), join(app, 'node_modules', dep), 'dir');
  }
  writeFileSync(join(app, 'package.json'), '{ "name": "revk-app", "private": true, "type": "module" }\n');
}, 60_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('dual package: an ESM app with a CommonJS dependency, both using pulse-streaming', () => {
  it('errors created by the CommonJS build are instances of the classes the ESM app imports (and the reverse)', () => {
    const url = inject('redisUrl');
    // `dep.cjs` is the CommonJS dependency (a shared "events" package of the company): it creates
    // the streams with require('pulse-streaming'). The ESM app catches with its own imports.
    writeFileSync(
      join(app, 'dep.cjs'),
      `const { Stream } = require('pulse-streaming');
exports.cjs = require('pulse-streaming');
exports.orders = (redis, name) => new Stream(name, redis, { codec: 'json' });
`,
    );
    writeFileSync(
      join(app, 'dual.mjs'),
      `import { createRequire } from 'node:module';
import { ClosedError, DecodeError, InvalidArgumentError, PulseError, Stream } from 'pulse-streaming';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
const require = createRequire(import.meta.url);
const dep = require('./dep.cjs');
const url = ${JSON.stringify(url)};
const out = {};
const detail = {};
const caught = async (fn) => { try { await fn(); } catch (e) { return e; } return undefined; };
for (const kind of ['ioredis', 'node-redis']) {
  const redis = kind === 'ioredis' ? new Redis(url) : createClient({ url });
  if (kind === 'node-redis') await redis.connect();
  const name = 'revk-dual-' + kind + '-' + process.pid + '-' + Math.random().toString(36).slice(2);
  // A bad argument to the dependency's build.
  const bad = await caught(() => dep.orders(redis, 'bad name'));
  out[kind + ' InvalidArgumentError (cjs -> esm)'] = bad instanceof InvalidArgumentError && bad instanceof PulseError;
  // The README's "Typed events" loop, on a stream the dependency created: bytes that do not decode.
  const orders = dep.orders(redis, name);
  await orders.add('order.created', { id: 1 });
  await (kind === 'ioredis' ? redis.xadd('pulse:stream:' + name, '*', 'n', 'order.created', 'p', 'not json') : redis.xAdd('pulse:stream:' + name, '*', { n: 'order.created', p: 'not json' }));
  const sink = await orders.newSink('billing', { startAt: 'oldest' });
  let handled = 0;
  let rethrown;
  try {
    for await (const ev of sink) {
      try {
        void ev.data;
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
      }
      await ev.ack();
      if (++handled === 2) break;
    }
  } catch (err) {
    rethrown = err;
  }
  out[kind + ' DecodeError (cjs -> esm), the README loop handles both events'] = handled === 2 && rethrown === undefined;
  detail[kind] = { handled, rethrown: rethrown && rethrown.name + ': ' + rethrown.message };
  await sink.close();
  const closed = await caught(() => sink.subscribe());
  out[kind + ' ClosedError (cjs -> esm)'] = closed instanceof ClosedError && closed instanceof PulseError;
  // The reverse: the app's (ESM) stream, checked by the dependency with its (CJS) classes.
  const esmErr = await caught(() => new Stream(name, redis, { maxLen: -1 }));
  out[kind + ' InvalidArgumentError (esm -> cjs)'] = esmErr instanceof dep.cjs.InvalidArgumentError && esmErr instanceof dep.cjs.PulseError;
  await orders.destroy();
  if (kind === 'ioredis') redis.disconnect(); else await redis.close();
}
console.log(JSON.stringify({ out, detail }));
`,
    );
    const r = run(process.execPath, ['dual.mjs']);
    expect(r.status, r.out).toBe(0);
    const { out: got, detail } = JSON.parse(r.out) as { out: Record<string, boolean>; detail: unknown };
    // detail: the README loop rethrew the CJS DecodeError (`instanceof` the ESM class is false), so
    // the loop died on the first bad event and never acked it.
    expect(got, JSON.stringify(detail)).toEqual(Object.fromEntries(Object.keys(got).map((k) => [k, true])));
  }, 30_000);
});

describe('TypeScript users', () => {
  const strict = ['--strict', '--noEmit', '--skipLibCheck', '--types', 'node', '--target', 'es2022', '--noUncheckedIndexedAccess'];

  it('exactOptionalPropertyTypes: options read from config (possibly undefined) compile, as the runtime accepts them', () => {
    // Plain JS first: the runtime takes an undefined option as its default (no error, no Redis call needed).
    writeFileSync(
      join(app, 'undef.mjs'),
      `import { Stream } from 'pulse-streaming';
import { Redis } from 'ioredis';
const redis = new Redis({ lazyConnect: true });
new Stream('a', redis, { maxLen: undefined, logger: undefined, ttlMs: undefined, retention: undefined, dedupWindowMs: undefined, codec: undefined });
console.log('ok');
redis.disconnect();
`,
    );
    expect(run(process.execPath, ['undef.mjs']).out).toBe('ok\n');
    const body = (imp: string) => `${imp}
import { Redis } from 'ioredis';
interface Config { maxLen?: number | undefined; topic?: string | undefined; deadLetterStream?: string | undefined; concurrency?: number | undefined; signal?: AbortSignal | undefined }
declare const cfg: Config;
export async function main(): Promise<void> {
  const stream = new Stream('orders', new Redis({ lazyConnect: true }), { maxLen: cfg.maxLen });
  await stream.add('order.created', 'x', { topic: cfg.topic });
  const reader = await stream.newReader({ topic: cfg.topic });
  reader.subscribe({ signal: cfg.signal });
  const sink = await stream.newSink('billing', { deadLetterStream: cfg.deadLetterStream });
  await sink.process(async (ev) => ev.ack(), { concurrency: cfg.concurrency, signal: cfg.signal });
}
`;
    writeFileSync(join(app, 'exact.mts'), body("import { Stream } from 'pulse-streaming';"));
    writeFileSync(join(app, 'exact.cts'), body("import pulse = require('pulse-streaming');\nimport Stream = pulse.Stream;"));
    const r = run(process.execPath, [TSC, ...strict, '--exactOptionalPropertyTypes', '--module', 'nodenext', 'exact.mts', 'exact.cts']);
    expect(r.out).toBe('');
  }, 60_000);

  it('readonly arrays are accepted where the library only reads them (dead-letter ids)', () => {
    // deadLetters.ts only reads `ids` (Array.isArray, map, spread): a `readonly string[]` (a selection
    // kept in a frozen config, a function returning ReadonlyArray) is refused at compile time.
    writeFileSync(
      join(app, 'ro.mts'),
      `import { readDeadLetters, replayDeadLetters, Stream } from 'pulse-streaming';
import { Redis } from 'ioredis';
declare const selected: readonly string[];
export async function main(): Promise<void> {
  const stream = new Stream('orders', new Redis({ lazyConnect: true }));
  await readDeadLetters(stream, { ids: selected });
  await replayDeadLetters(stream, { ids: selected, sink: 'billing' });
  await replayDeadLetters(stream, { ids: ['1-0', '2-0'] as const });
}
`,
    );
    const r = run(process.execPath, [TSC, ...strict, '--module', 'nodenext', 'ro.mts']);
    expect(r.out).toBe('');
  }, 60_000);

  it('a Stream typed with an event map but no codec does not compile (its events would be untyped at run time)', () => {
    // With the event map and no codec, `add` is typed to take the values (every call rejects at run time:
    // "payload must be a Uint8Array, Buffer or string") and `ev.data` is typed as the value while it is
    // the raw Buffer: `ev.data.id` is undefined, silently. API.md: "Without a codec the stream is untyped".
    writeFileSync(
      join(app, 'nocodec.mts'),
      `import { Stream } from 'pulse-streaming';
import { Redis } from 'ioredis';
type OrderEvents = { 'order.created': { id: number } };
const redis = new Redis({ lazyConnect: true });
// @ts-expect-error a typed stream needs a codec (or schemas)
export const orders = new Stream<OrderEvents>('orders', redis);
// @ts-expect-error a typed stream needs a codec (or schemas)
export const orders2 = new Stream<OrderEvents>('orders', redis, { maxLen: 10 });
export const ok = new Stream<OrderEvents>('orders', redis, { codec: 'json' });
`,
    );
    const r = run(process.execPath, [TSC, ...strict, '--module', 'nodenext', 'nocodec.mts']);
    expect(r.out).toBe('');
  }, 60_000);
});
