/**
 * The CLI's failures, run as the real binary: each is one line on stderr
 * that says what to do, with a non-zero exit code, and none is a raw Redis,
 * socket or Lua message. Connection faults use servers and sockets this file
 * starts (a second database index, a password, a web server, a socket that
 * closes at once). The CLI has its own ioredis clients, so the setup client
 * kind does not matter here.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sinkKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { buildCli, cli, lines, noStack } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';
import { freePort, RedisServer, rawCommand } from './support/redisServer.js';

beforeAll(buildCli, 120_000);

/** Starts `server` on a free port of 127.0.0.1. */
async function listen(server: Server | HttpServer): Promise<number> {
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return port;
}

describe.concurrent('CLI connection failures', { timeout: 90_000 }, () => {
  let plain: RedisServer;
  let locked: RedisServer;
  let web: HttpServer;
  let webPort: number;
  let closer: Server;
  let closerPort: number;
  let full: Server;
  let fullPort: number;
  beforeAll(async () => {
    [plain, locked] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    // Set after the start: RedisServer waits for a PING that a locked server would refuse.
    expect(await rawCommand(locked.port, 'CONFIG SET requirepass s3cret', 10_000)).toBe('+OK');
    web = createHttpServer((_req, res) => res.end('hello'));
    webPort = await listen(web);
    closer = createServer((socket) => socket.destroy());
    closerPort = await listen(closer);
    // A server at its maxclients, whose reply carries terminal escapes (a bogus or hostile one).
    full = createServer((socket) => socket.end('-ERR max number of clients reached\u001b[2J\u001b[31mOK\r\n'));
    fullPort = await listen(full);
  });
  afterAll(async () => {
    web?.close();
    closer?.close();
    full?.close();
    await Promise.all([plain?.stop(), locked?.stop()]);
  });

  it('refuses a database index the server does not have, and writes nothing', async ({ expect }) => {
    const name = uniqueName('clidb');
    const r = await cli(['add', name, 'created', 'x'], { redis: `${plain.url}/99` });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/has no database 99: it has 16 \(0 to 15\)/)]);
    const c = await connect('ioredis', plain.url);
    try {
      expect(await c.cmd('EXISTS', `pulse:stream:${name}`)).toBe(0);
      // A database it has is used, not database 0.
      const ok = await cli(['add', name, 'created', 'x'], { redis: `${plain.url}/3` });
      expect(ok.code, ok.stderr).toBe(0);
      expect(await c.cmd('EXISTS', `pulse:stream:${name}`)).toBe(0);
      await c.cmd('SELECT', '3');
      expect(await c.cmd('EXISTS', `pulse:stream:${name}`)).toBe(1);
    } finally {
      await c.close();
    }
    const bad = await cli(['streams'], { redis: `${plain.url}/abc` });
    expect(bad.code, bad.stderr).toBe(2);
    expect(lines(bad.stderr)).toEqual([expect.stringContaining('invalid database "abc" in the Redis URL')]);
    expect(noStack(bad.stderr)).toBe(true);
  });

  it('refuses a password the server does not ask for', async ({ expect }) => {
    const name = uniqueName('clipw');
    const r = await cli(['add', name, 'created', 'x'], { redis: plain.url.replace('redis://', 'redis://:wrongpass@') });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([expect.stringContaining('has no password, but the URL gives one')]);
    expect(r.stderr).not.toContain('wrongpass');
  });

  it('says a password is needed, or wrong, without NOAUTH or WRONGPASS text', async ({ expect }) => {
    const none = await cli(['streams'], { redis: locked.url });
    expect(none.code, none.stderr).toBe(1);
    expect(lines(none.stderr)).toEqual([expect.stringContaining('requires a password: put it in the URL, redis://:PASSWORD@')]);
    expect(none.stderr).not.toMatch(/NOAUTH|HELLO/);
    const wrong = await cli(['streams'], { redis: locked.url.replace('redis://', 'redis://:nope@') });
    expect(wrong.code, wrong.stderr).toBe(1);
    expect(lines(wrong.stderr)).toEqual([expect.stringContaining('refused the user name or password in the URL')]);
    const right = await cli(['streams', '--json'], { redis: locked.url.replace('redis://', 'redis://:s3cret@') });
    expect(right.code, right.stderr).toBe(0);
    expect(JSON.parse(right.stdout)).toEqual([]);
  });

  it('says a web server on the port is not Redis, every time', async ({ expect }) => {
    // The client's own error is a race between the answer and the close: ask several times.
    for (let i = 0; i < 3; i++) {
      const r = await cli(['streams'], { redis: `redis://127.0.0.1:${webPort}` });
      expect(r.code, r.stderr).toBe(1);
      expect(lines(r.stderr)).toEqual([expect.stringContaining('is not a Redis server (it answered like a web server')]);
      expect(r.stderr).not.toMatch(/RESP|report this|EPIPE/);
    }
  });

  // Its words were printed as they came: an escape sequence in them reached the terminal (outside trial).
  it('says a server refuses new connections, its reply escaped', async ({ expect }) => {
    const r = await cli(['streams'], { redis: `redis://127.0.0.1:${fullPort}` });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/refuses new connections/);
    expect(r.stderr).not.toContain('\u001b');
    expect(r.stderr).toContain('\\u001b');
  });

  it('explains a server that closes the connection at once, without EPIPE', async ({ expect }) => {
    const r = await cli(['streams'], { redis: `redis://127.0.0.1:${closerPort}` });
    expect(r.code, r.stderr).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringContaining('closed the connection without answering')]);
    expect(r.stderr).not.toMatch(/EPIPE|ECONNRESET/);
  });
});

describe.concurrent('CLI usage and typos', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  it('lists --redis and --json in the help of every command', async ({ expect }) => {
    const commands = [
      ['streams'],
      ['stream'],
      ['sinks'],
      ['tail'],
      ['add'],
      ['pending'],
      ['dead'],
      ['dead', 'list'],
      ['dead', 'show'],
      ['dead', 'replay'],
      ['destroy'],
      ['demo'],
    ];
    const help = new Map<string, string>();
    // One at a time: a dozen node processes at once only slows a loaded machine down.
    for (const cmd of commands) {
      const r = await cli([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout, cmd.join(' ')).toContain('--redis <url>');
      expect(r.stdout, cmd.join(' ')).toContain('--json');
      help.set(cmd.join(' '), r.stdout);
    }
    // What else these helps must say, checked here rather than by running them again (each
    // run of the binary is ~0.17 s of CPU): dead names replay, tail its --count (cli.test.ts),
    // add the newline it drops from stdin (cliTail.test.ts, which tests the dropping).
    expect(help.get('dead')).toMatch(/replay/);
    expect(help.get('tail')).toContain('--count');
    expect(help.get('add')).toContain('without its one trailing newline');
  });

  it('says an unknown dead subcommand is one, exit 2', async ({ expect }) => {
    const r = await cli(['dead', 'frob', 'orders']);
    expect(r.code, r.stderr).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringContaining("unknown dead subcommand 'frob'")]);
    expect(r.stderr).not.toContain('too many arguments');
    const near = await cli(['dead', 'replya', 'orders']);
    expect(near.code, near.stderr).toBe(2);
    expect(near.stderr).toContain('did you mean replay?');
  });

  it('fails on a consumer the sink does not have, and lists the ones it has', async ({ expect }) => {
    const name = uniqueName('clityp');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'a', 'p', '1');
    await c.cmd('XGROUP', 'CREATE', key, 'billing', '0');
    await c.cmd('XREADGROUP', 'GROUP', 'billing', 'worker-1', 'STREAMS', key, '>');
    await c.cmd('XGROUP', 'CREATECONSUMER', key, 'billing', 'worker-2');
    try {
      const typo = await cli(['pending', name, 'billing', '--consumer', 'nobody']);
      expect(typo.code, typo.stderr).toBe(1);
      expect(lines(typo.stderr)).toEqual([
        expect.stringContaining('has no consumer "nobody" (its consumers: worker-1, worker-2)'),
      ]);
      const idle = await cli(['pending', name, 'billing', '--consumer', 'worker-2', '--json']);
      expect(idle.code, idle.stderr).toBe(0);
      expect(JSON.parse(idle.stdout)).toMatchObject({ entries: [] });
    } finally {
      await c.cmd('DEL', key);
    }
  });

  it('fails on a dead-letter replay for a sink that does not exist, or an ID that is not there', async ({ expect }) => {
    const name = uniqueName('clityp');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'a', 'p', '1');
    await c.cmd('XGROUP', 'CREATE', key, 'billing', '0');
    await c.cmd('XADD', `${key}:dead`, '*', 'n', 'x', 'p', 'y', 'source_stream', name, 'source_sink', 'gone', 'source_id', '1-1');
    try {
      const typo = await cli(['dead', 'replay', name, '--sink', 'nosuch']);
      expect(typo.code, typo.stderr).toBe(1);
      expect(lines(typo.stderr)).toEqual([expect.stringContaining('has no sink "nosuch" and no dead letters from one')]);
      const noId = await cli(['dead', 'replay', name, '--id', '1-1']);
      expect(noId.code, noId.stderr).toBe(1);
      expect(lines(noId.stderr)).toEqual([expect.stringContaining('no dead letter 1-1')]);
      // An existing sink with nothing to replay is not an error.
      const none = await cli(['dead', 'replay', name, '--sink', 'billing']);
      expect(none.code, none.stderr).toBe(0);
      expect(await c.cmd('XLEN', `${key}:dead`)).toBe(1);
      // Letters of a sink deleted since are still replayed.
      const gone = await cli(['dead', 'replay', name, '--sink', 'gone', '--json']);
      expect(gone.code, gone.stderr).toBe(0);
      expect(JSON.parse(gone.stdout)).toMatchObject({ replayed: 1 });
    } finally {
      await c.cmd('DEL', key, `${key}:dead`);
    }
  });

  it('reports a key of the wrong type in one line, without Lua script text', async ({ expect }) => {
    const name = uniqueName('cliwt');
    const key = `pulse:stream:${name}`;
    await c.cmd('SET', key, 'not a stream');
    await c.cmd('XADD', `${key}:dead`, '*', 'n', 'x', 'p', 'y', 'source_stream', name, 'source_sink', 's', 'source_id', '1-1');
    const other = uniqueName('cliwt');
    const otherKey = `pulse:stream:${other}`;
    await c.cmd('XADD', otherKey, '*', 'n', 'a', 'p', '1');
    await c.cmd('XGROUP', 'CREATE', otherKey, 'billing', '0');
    await c.cmd('SET', sinkKeys(other, 'billing').consumers, 'not a sorted set');
    try {
      const replay = await cli(['dead', 'replay', name]);
      expect(replay.code, replay.stderr).toBe(1);
      expect(lines(replay.stderr)).toEqual([expect.stringContaining(`${key} is not a pulse stream: the key holds a string`)]);
      expect(replay.stderr).not.toMatch(/script|user_script/);
      expect(await c.cmd('XLEN', `${key}:dead`)).toBe(1);

      const show = await cli(['stream', other]);
      expect(show.code, show.stderr).toBe(1);
      expect(lines(show.stderr)).toEqual([expect.stringContaining('(WRONGTYPE): check its keys with redis-cli TYPE')]);
      expect(show.stderr).not.toMatch(/script|Operation against/);
    } finally {
      await c.cmd('DEL', key, `${key}:dead`, otherKey, sinkKeys(other, 'billing').consumers);
    }
  });

  it('counts in words that agree: 1 entry, 1 sink', async ({ expect }) => {
    const name = uniqueName('clipl');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'a', 'p', '1');
    await c.cmd('XGROUP', 'CREATE', key, 'billing', '0');
    try {
      // destroy asks only on a terminal: run it under `script`, answer no.
      const r = await cli(['destroy', name], { tty: true, answer: { prompt: '[y/N]', answer: 'n\n' } });
      expect(r.stdout).toContain(`destroy stream ${name} (1 entry, 1 sink)?`);
      expect(r.stdout).toContain('not destroyed');
      expect(r.code, r.stderr).toBe(1);
      expect(await c.cmd('EXISTS', key)).toBe(1);
    } finally {
      await c.cmd('DEL', key);
    }
  });
});
