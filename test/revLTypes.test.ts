/**
 * revL: generic wrappers around `new Stream<E>(...)` that compiled against
 * the constructor `(name, redis, options: StreamOptions<Events> = {})`
 * (27b4ea5) and no longer compile since it takes `...options:
 * StreamArgs<Events>` (a conditional tuple, deferred for a type parameter)
 * and `StreamOptions` became a conditional type (commits b083279, 8f74138).
 * Both are ordinary library code (a factory that forwards its caller's
 * options), and neither involves a typed stream without a codec: the break
 * is for every user, not the case the change meant to refuse.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PackedApp, packedApp, TSC } from './support/packedApp.js';

let app: PackedApp;

beforeAll(() => {
  app = packedApp('pulse-revL-types-');
}, 60_000);

afterAll(() => {
  app?.remove();
});

const strict = ['--strict', '--noEmit', '--skipLibCheck', '--types', 'node', '--target', 'es2022', '--module', 'nodenext'];

describe('revL: generic wrappers of the Stream constructor', () => {
  it('a factory forwarding optional options (options?: StreamOptions<E>) compiles', () => {
    app.write(
      'fwd.mts',
      `import { Stream, type EventMap, type RedisClient, type StreamOptions, type Untyped } from 'pulse-streaming';
export function makeStream<E extends EventMap = Untyped>(name: string, redis: RedisClient, options?: StreamOptions<E>): Stream<E> {
  return new Stream<E>(name, redis, options);
}
`,
    );
    expect(app.run(process.execPath, [TSC, ...strict, 'fwd.mts']).out).toBe('');
  }, 60_000);

  it('a factory with a default options value (options: StreamOptions<E> = {}) compiles', () => {
    app.write(
      'dflt.mts',
      `import { Stream, type EventMap, type RedisClient, type StreamOptions, type Untyped } from 'pulse-streaming';
export function makeStream<E extends EventMap = Untyped>(name: string, redis: RedisClient, options: StreamOptions<E> = {}): Stream<E> {
  return new Stream<E>(name, redis, options);
}
`,
    );
    expect(app.run(process.execPath, [TSC, ...strict, 'dflt.mts']).out).toBe('');
  }, 60_000);

  it('an interface extending StreamOptions of an event map (or of a type parameter) compiles', () => {
    // Was an interface: extending it is how an app adds its own settings. As a conditional type (an
    // intersection with a union for a typed map) it cannot be extended: TS2312, whatever the codec.
    app.write(
      'ext.mts',
      `import type { EventMap, StreamOptions } from 'pulse-streaming';
type Orders = { 'order.created': { id: string } };
export interface OrderStreamOptions extends StreamOptions<Orders> { redisUrl: string }
export interface ServiceStreamOptions<E extends EventMap> extends StreamOptions<E> { redisUrl: string }
export const cfg: OrderStreamOptions = { codec: 'json', redisUrl: 'redis://localhost' };
`,
    );
    expect(app.run(process.execPath, [TSC, ...strict, 'ext.mts']).out).toBe('');
  }, 60_000);
});
