/** Where and when the benchmark ran. */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';

export interface Machine {
  readonly date: string;
  readonly nproc: number;
  readonly cpu: string;
  readonly node: string;
  readonly redis: string;
  /** 1-minute load average when the benchmark started and ended: other work on the machine skews results. */
  readonly loadStart: number;
  readonly loadEnd: number;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function describeMachine(redisVersion: string, loadStart: number): Machine {
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpu: cpuModel(),
    node: process.version,
    redis: redisVersion,
    loadStart,
    loadEnd: currentLoad(),
  };
}

export function currentLoad(): number {
  return loadavg()[0] ?? 0;
}
