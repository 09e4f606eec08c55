/**
 * `instanceof` of the library's errors across its two builds, in one process:
 * an ESM app (`import 'pulse-streaming'`, the ESM build) whose CommonJS
 * dependency creates the streams with `require('pulse-streaming')` (the
 * CommonJS build, Node's dual-package hazard). Each build has its own error
 * classes; the errors of one must still be instances of the other's
 * (`InvalidArgumentError`, `ClosedError`, `DecodeError` and `PulseError`,
 * both ways), or the README's typed-events loop (`if (!(err instanceof
 * DecodeError)) throw err;`) dies on the first event that does not decode.
 * Run on the packed package (test/support/packedApp.ts), with both clients.
 * Outside review K.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type PackedApp, packedApp } from './support/packedApp.js';

let app: PackedApp;

beforeAll(() => {
  app = packedApp('pulse-errors-builds-');
}, 60_000);

afterAll(() => {
  app?.remove();
});

describe('errors across the ESM and CommonJS builds (an ESM app with a CommonJS dependency)', () => {
  it('errors created by the CommonJS build are instances of the classes the ESM app imports (and the reverse)', () => {
    const url = inject('redisUrl');
    // `dep.cjs` is the CommonJS dependency (a shared "events" package of the company): it creates
    // the streams with require('pulse-streaming'). The ESM app catches with its own imports.
    app.write(
      'dep.cjs',
      `const { Stream } = require('pulse-streaming');
exports.cjs = require('pulse-streaming');
exports.orders = (redis, name) => new Stream(name, redis, { codec: 'json' });
`,
    );
    app.write(
      'dual.mjs',
      `import { createRequire } from 'node:module';
import { ClosedError, DecodeError, InvalidArgumentError, PulseError, SinkEvent, Stream } from 'pulse-streaming';
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
  const name = 'errbuilds-' + kind + '-' + process.pid + '-' + Math.random().toString(36).slice(2);
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
      // README: the other classes are each build's own.
      out[kind + ' a SinkEvent of the CommonJS build is not instanceof the ESM class'] = ev instanceof dep.cjs.SinkEvent && !(ev instanceof SinkEvent);
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
    const r = app.run(process.execPath, ['dual.mjs']);
    expect(r.status, r.out).toBe(0);
    const { out: got, detail } = JSON.parse(r.out) as { out: Record<string, boolean>; detail: unknown };
    // detail: the README loop rethrew the CJS DecodeError (`instanceof` the ESM class is false), so
    // the loop died on the first bad event and never acked it.
    expect(got, JSON.stringify(detail)).toEqual(Object.fromEntries(Object.keys(got).map((k) => [k, true])));
  }, 30_000);
});
