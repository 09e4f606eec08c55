/**
 * Stream names ending in ':lifecycle' (outside review P): `pulse:stream:<x>:lifecycle` is Go
 * Pulse's lifecycle record of stream `<x>`, which this library and Go write for every stream. A
 * stream of that name took the record's place: an add to `<x>` then wrote no record (a Go reader of
 * `<x>` was refused), or an add to `<x>:lifecycle` failed with WRONGTYPE although `new Stream`
 * had accepted the name. Such names are refused before any Redis call, as stream names and as
 * dead-letter stream names; sink names, and names that only contain ':lifecycle', stay valid.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('stream names that are Go lifecycle keys (%s)', (kind) => {
  it('new Stream refuses a name ending in :lifecycle, and Redis is left untouched', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const name = uniqueName('lcname');
    const main = new Stream(name, c.redis);
    ctx.onTestFinished(async () => {
      await main.destroy();
      await c.cmd('DEL', `pulse:stream:${name}:lifecycle`);
    });
    await main.add('e', 'x');
    expect(await c.cmd('TYPE', `pulse:stream:${name}:lifecycle`)).toBe('hash');
    expect(() => new Stream(`${name}:lifecycle`, c.redis)).toThrow(InvalidArgumentError);
    expect(() => new Stream(`${name}:lifecycle`, c.redis)).toThrow(/must not end in ':lifecycle'.*lifecycle record of stream/);
    // Refused before Redis saw anything: Go's record of `name` is still the hash it was.
    expect(await c.cmd('TYPE', `pulse:stream:${name}:lifecycle`)).toBe('hash');
    expect(Number(await c.cmd('HLEN', `pulse:stream:${name}:lifecycle`))).toBeGreaterThan(0);
  });

  it('a sink whose deadLetterStream ends in :lifecycle is refused; other names with :lifecycle are valid', async (ctx: TestContext) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const name = uniqueName('lcname');
    const s = new Stream(name, c.redis);
    ctx.onTestFinished(async () => {
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${name}:lifecycle`);
    });
    await expect(s.newSink('g', { deadLetterStream: `${name}:lifecycle` })).rejects.toBeInstanceOf(InvalidArgumentError);
    // Only the suffix is reserved: a sink name, and a stream name with ':lifecycle' inside, are fine.
    const inner = new Stream(`${name}:lifecycle:x`, c.redis);
    ctx.onTestFinished(async () => {
      await inner.destroy();
      await c.cmd('DEL', `pulse:stream:${name}:lifecycle:x:lifecycle`);
    });
    await expect(inner.add('e', 'y')).resolves.toMatch(/^\d+-\d+$/);
    const sink = await s.newSink('g:lifecycle', { startAt: 'oldest' });
    ctx.onTestFinished(() => sink.close());
    await s.add('e', 'z');
    const got = await sink.subscribe().next();
    expect(got.done).toBe(false);
  });
});
