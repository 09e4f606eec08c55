/**
 * Redis errors, without a server: the code at the start of a reply error,
 * for both clients' error classes, and which errors a retry can outlive.
 */

import { ReplyError } from 'ioredis';
import { ClientClosedError, ErrorReply, SimpleError, SocketClosedUnexpectedlyError, TimeoutError } from 'redis';
import { describe, expect, it } from 'vitest';
import { PulseError } from '../packages/pulse-streaming/src/index.js';
import { isRetryable, replyCode, toPulseError } from '../packages/pulse-streaming/src/internal/redisErrors.js';

describe('replyCode', () => {
  it('reads the code at the start of a Redis error', () => {
    expect(replyCode(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe('WRONGTYPE');
    expect(replyCode(new Error('NOGROUP No such key or consumer group'))).toBe('NOGROUP');
    expect(replyCode(new Error('BUSYGROUP Consumer Group name already exists'))).toBe('BUSYGROUP');
    expect(replyCode(new Error('NOSCRIPT No matching script. Please use EVAL.'))).toBe('NOSCRIPT');
  });

  it('finds the code wrapped by a script error', () => {
    expect(replyCode(new Error('ERR user_script:12: NOGROUP No such key script: abc, on @user_script:12.'))).toBe('NOGROUP');
    expect(
      replyCode(new Error('ERR Error running script (call to f_x): @user_script:1: WRONGTYPE Operation against a key')),
    ).toBe('WRONGTYPE');
  });

  // ioredis gives up a command bounced between the nodes of a migrating slot (ASK, TRYAGAIN, MOVED)
  // with this error, whose last bounce was often MOVED: the add was not run anywhere, as for
  // TRYAGAIN, which is what README tells users to retry (outside review E, a slot moved key by key).
  it("ioredis's 'Too many Cluster redirections' is TRYAGAIN, whatever the last bounce was", () => {
    const err = new Error('Too many Cluster redirections. Last error: ReplyError: MOVED 12807 127.0.0.1:7001');
    expect(replyCode(err)).toBe('TRYAGAIN');
    expect(isRetryable(err)).toBe(true);
    // A closed connection counts as a redirection for ioredis: the command may have run.
    expect(replyCode(new Error('Too many Cluster redirections. Last error: Error: Connection is closed.'))).toBeUndefined();
  });

  it('a plain ERR is ERR', () => {
    expect(replyCode(new Error('ERR syntax error'))).toBe('ERR');
  });

  it('is undefined for things that are not Redis errors', () => {
    expect(replyCode('WRONGTYPE as a string')).toBeUndefined();
    expect(replyCode(undefined)).toBeUndefined();
    expect(replyCode(new Error('connection reset'))).toBeUndefined();
    expect(replyCode(new Error('Connection is closed.'))).toBeUndefined();
  });

  it('works on error subclasses (client reply errors)', () => {
    class ReplyError extends Error {}
    expect(replyCode(new ReplyError('NOGROUP No such key'))).toBe('NOGROUP');
  });
});

describe('isRetryable', () => {
  const replies = (message: string): Error[] => [new ReplyError(message), new SimpleError(message), new ErrorReply(message)];

  it.each([
    'NOGROUP No such key or consumer group',
    'LOADING Redis is loading the dataset in memory',
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    "READONLY You can't write against a read only replica.",
    'MOVED 3999 127.0.0.1:6381',
    'ASK 3999 127.0.0.1:6381',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
    'UNBLOCKED client unblocked via CLIENT UNBLOCK',
    'NOSCRIPT No matching script. Please use EVAL.',
    'ERR max number of clients reached',
    // An operator's SCRIPT KILL of one of the library's scripts: it runs again.
    'ERR Error running script (call to f_0123456789abcdef0123456789abcdef01234567): @user_script:12: Script killed by user with SCRIPT KILL...',
  ])('a reply %j can be retried (both clients)', (message) => {
    for (const err of replies(message)) expect(isRetryable(err)).toBe(true);
  });

  it.each([
    'ERR Invalid stream ID specified as stream command argument',
    'ERR syntax error',
    "ERR unknown command 'XREAD', with args beginning with: ",
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    "NOPERM User u has no permissions to run the 'xread' command",
    'NOAUTH Authentication required.',
    "CROSSSLOT Keys in request don't hash to the same slot",
    // ACL refusals inside a script (Redis 7) carry code ERR: read as NOPERM (see replyCode).
    "ERR The user executing the script can't run this command or subcommand script: f_0123, on @user_script:12.",
  ])('a reply %j cannot (both clients)', (message) => {
    for (const err of replies(message)) expect(isRetryable(err)).toBe(false);
  });

  it('connection and client errors can be retried, even when they look like a reply', () => {
    expect(isRetryable(new Error('Connection is closed.'))).toBe(true);
    expect(isRetryable(new Error('ERR looks like a reply but is not one'))).toBe(true);
    expect(isRetryable(new SocketClosedUnexpectedlyError())).toBe(true);
    expect(isRetryable(new ClientClosedError())).toBe(true);
    expect(isRetryable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetryable('a string')).toBe(true);
  });

  it('judges a PulseError by its cause', () => {
    expect(isRetryable(new PulseError('x', { cause: new ReplyError('WRONGTYPE x') }))).toBe(false);
    expect(isRetryable(new PulseError('x', { cause: new ReplyError('LOADING x') }))).toBe(true);
  });
});

// node-redis' TimeoutError has an empty message: the wrapped error said "ack ...: " and stopped (outside review M).
describe('toPulseError', () => {
  it('gives a reason for an error without a message: its class', () => {
    expect(toPulseError(new TimeoutError(), 'ack events of sink k on stream s').message).toBe(
      'ack events of sink k on stream s: TimeoutError (the command timed out in the client)',
    );
    expect(toPulseError(new RangeError(), 'w').message).toBe('w: RangeError');
    expect(toPulseError(new ReplyError('WRONGTYPE x'), 'w').message).toBe('w: WRONGTYPE x');
  });
});
