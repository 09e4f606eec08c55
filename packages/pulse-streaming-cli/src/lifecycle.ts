/**
 * Process lifetime of the command-line program: Ctrl-C and SIGTERM abort
 * {@link shutdownSignal} so long-running commands end cleanly; resources
 * register cleanups that run before the process exits, and synchronous ones
 * that also run when it exits any other way.
 */

const controller = new AbortController();

/** Aborted on the first SIGINT or SIGTERM. */
export const shutdownSignal: AbortSignal = controller.signal;

let interruptedBy: NodeJS.Signals | undefined;
const cleanups = new Set<() => Promise<void> | void>();
const exitCleanups = new Set<() => void>();

/** Registers an async cleanup run by {@link runCleanups}; returns a function that unregisters it. */
export function onCleanup(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Registers a synchronous cleanup that also runs on any process exit; returns a function that unregisters it. */
export function onExit(fn: () => void): () => void {
  exitCleanups.add(fn);
  return () => exitCleanups.delete(fn);
}

/** Runs the registered cleanups, most recent first, each bounded so a stuck one cannot hang the exit. */
export async function runCleanups(): Promise<void> {
  const list = [...cleanups].reverse();
  cleanups.clear();
  for (const fn of list) {
    let t: NodeJS.Timeout | undefined;
    try {
      await Promise.race([Promise.resolve().then(fn), new Promise((r) => (t = setTimeout(r, 3000)))]);
    } catch {
      // best effort: the process is ending
    } finally {
      clearTimeout(t);
    }
  }
}

function runExitCleanups(): void {
  for (const fn of [...exitCleanups].reverse()) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
  exitCleanups.clear();
}

/** The exit code for a process ended by `signal` (128 + signal number). */
export function signalExitCode(signal: NodeJS.Signals | undefined): number {
  return signal === 'SIGTERM' ? 143 : signal === 'SIGHUP' ? 129 : 130;
}

/** The signal that asked the program to stop, if any. */
export function interruptSignal(): NodeJS.Signals | undefined {
  return interruptedBy;
}

/**
 * Installs the SIGINT/SIGTERM/SIGHUP handlers: the first signal aborts
 * {@link shutdownSignal} and gives the command a few seconds to finish; a
 * second one, or a command that does not finish, exits at once.
 */
export function installSignalHandlers(): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interruptedBy !== undefined) {
      runExitCleanups();
      process.exit(signalExitCode(signal));
    }
    interruptedBy = signal;
    controller.abort();
    setTimeout(() => {
      runExitCleanups();
      process.exit(signalExitCode(signal));
    }, 5000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed terminal or a dropped SSH session: Node's default exit ran no cleanup, and the
  // throwaway redis-server (which ignores SIGHUP) outlived the program with its temp dir (outside trial).
  process.on('SIGHUP', onSignal);
  process.on('exit', runExitCleanups);
}

/** Writes the pending output, runs the cleanups and exits with `code`. */
export async function exit(code: number): Promise<never> {
  await runCleanups();
  runExitCleanups();
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) return resolve();
    stream.write('', () => resolve());
  });
}
