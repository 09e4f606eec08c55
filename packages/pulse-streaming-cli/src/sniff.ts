/**
 * What answers on a port, asked over a raw socket after a failed connection:
 * a web server answers "HTTP/1.1 400", a Redis server "+PONG" or "-ERR ...".
 * The client library's own error depends on timing (the server's close may
 * be seen before its answer), so the message the user gets should not.
 */
import { Socket } from 'node:net';

/** The first line a server sends back to `PING`, or undefined when it sends nothing within `timeoutMs`. */
export function firstAnswer(host: string, port: number, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = new Socket();
    let data = '';
    const done = (answer: string | undefined): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(data === '' ? undefined : data), timeoutMs);
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      const eol = data.indexOf('\n');
      if (eol >= 0) done(data.slice(0, eol).trim());
    });
    s.on('error', () => done(data === '' ? undefined : data.trim()));
    s.on('close', () => done(data === '' ? undefined : data.trim()));
    s.connect(port, host, () => s.write('PING\r\n'));
  });
}
