/**
 * Audit: README "Every command takes --redis <url> (... rediss:// for TLS)".
 * A private redis-server with TLS and a CA made here; the CLI trusts it through NODE_EXTRA_CA_CERTS.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, cli } from './support/cli.js';
import { uniqueName, waitFor } from './support/clients.js';
import { freePort, rawCommand } from './support/redisServer.js';

beforeAll(buildCli, 120_000);

describe('audit: CLI over TLS (rediss://)', { timeout: 60_000 }, () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let url: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pulse-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=audit-ca',
    );
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1');
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
    const tlsPort = await freePort();
    const plainPort = await freePort();
    server = spawn(
      'redis-server',
      [
        '--port',
        String(plainPort),
        '--bind',
        '127.0.0.1',
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        join(dir, 'server.crt'),
        '--tls-key-file',
        join(dir, 'server.key'),
        '--tls-ca-cert-file',
        join(dir, 'ca.crt'),
        '--tls-auth-clients',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    await waitFor(async () => (await rawCommand(plainPort, 'PING')).includes('PONG'), { what: 'redis-server up' });
    url = `rediss://127.0.0.1:${tlsPort}`;
    env = { NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') };
  });
  afterAll(() => {
    if (server?.pid !== undefined && server.exitCode === null) server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('add, streams, tail and destroy work over rediss://', async () => {
    const name = uniqueName('tls');
    const add = await cli(['add', name, 'e', 'hello', '--json'], { redis: url, env });
    expect(add.code, add.stderr).toBe(0);
    const streams = await cli(['streams', '--json'], { redis: url, env });
    expect(streams.code, streams.stderr).toBe(0);
    expect((JSON.parse(streams.stdout) as Array<{ name: string }>).map((s) => s.name)).toContain(name);
    const tail = await cli(['tail', name, '--from', 'oldest', '--count', '1', '--json'], { redis: url, env });
    expect(tail.code, tail.stderr).toBe(0);
    expect(JSON.parse(tail.stdout.trim())).toMatchObject({ stream: name, payload: 'hello' });
    const destroy = await cli(['destroy', name, '--yes'], { redis: url, env });
    expect(destroy.code, destroy.stderr).toBe(0);
  });

  it('an untrusted certificate is an error in one line, exit code 1', async () => {
    const r = await cli(['streams'], { redis: url });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
