import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/**
 * A child process running a script of this folder, for tests whose assertion is that
 * the process exits on its own once it closed what it opened.
 */

export interface Child {
  proc: ChildProcess;
  out: () => string;
  waitLine(prefix: string, ms: number): Promise<string>;
  exited(ms: number): Promise<number | null | 'timeout'>;
}

export function spawnChild(script: string, args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Child {
  const proc = spawn(process.execPath, [...nodeArgs, join(import.meta.dirname, script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d) => {
    out += d.toString();
  });
  let code: number | null | undefined;
  let signal: NodeJS.Signals | null = null;
  // 'close', not 'exit': 'exit' may come before the last of the child's output is read, and a line
  // printed just before exiting was then reported missing (a CI failure of processHungExit).
  const exit = new Promise<number | null>((r) =>
    proc.once('close', (c, s) => {
      code = c;
      signal = s;
      r(c);
    }),
  );
  return {
    proc,
    out: () => out,
    async waitLine(prefix, ms) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const line = out.split('\n').find((l) => l.startsWith(prefix));
        if (line !== undefined) return line;
        if (code !== undefined) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const end = code === undefined ? `in ${ms} ms` : `before it exited (code ${code}, signal ${signal})`;
      throw new Error(`no "${prefix}" line ${end}; output:\n${out}`);
    },
    async exited(ms) {
      if (code !== undefined) return code;
      const t = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms));
      const res = await Promise.race([exit, t]);
      if (res === 'timeout') proc.kill('SIGKILL');
      return res;
    },
  };
}
