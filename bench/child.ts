/** Child processes of the benchmark: started, waited for, stopped, and never left behind. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const children = new Set<ChildProcess>();
/** children started in a process group of their own (detached), signalled as a group */
const groups = new WeakSet<ChildProcess>();
const tempDirs = new Set<string>();
const exitHooks: (() => Promise<void>)[] = [];

export interface Started {
  child: ChildProcess;
  /** the URL captured from the ready line */
  url: string;
  /** the last lines the child wrote on stderr (for error messages) */
  stderrTail(): string;
}

/** Registers a child so that it is never left behind; one spawned `detached` (`group`) is signalled with its whole process group. */
export function track(child: ChildProcess, group = false): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (group) groups.add(child);
  return child;
}

function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (groups.has(child) && child.pid) {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // the group is gone
    }
  } else child.kill(sig);
}

/**
 * Starts `node args...` and resolves once a line of its stdout matches `ready` (the first capture
 * group is the URL). Rejects if the process exits first or does not get ready in time.
 */
export function startNode(name: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, cwd: string, timeoutMs = 60_000): Promise<Started> {
  const child = track(spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString('utf8')).slice(-4000);
  });
  const stderrTail = () => err.trim().split('\n').slice(-15).join('\n');
  return new Promise<Started>((resolve, reject) => {
    let out = '';
    let done = false;
    const timer = setTimeout(() => fail(new Error(`${name} did not get ready within ${timeoutMs / 1000} s`)), timeoutMs);
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal(child, 'SIGKILL');
      reject(new Error(`${e.message}${stderrTail() ? `\n--- ${name} stderr ---\n${stderrTail()}` : ''}`));
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`${name} exited during start-up (code ${code}, signal ${signal})`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (done) return;
      out += d.toString('utf8');
      const m = ready.exec(out);
      if (m) {
        done = true;
        clearTimeout(timer);
        child.stdout!.resume();
        resolve({ child, url: m[1], stderrTail });
      }
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once the process is gone. */
export function stop(child: ChildProcess, graceMs = 20_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => signal(child, 'SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    signal(child, 'SIGTERM');
  });
}

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Work to do (e.g. drop a test database) if the run is interrupted. */
export function onCleanup(hook: () => Promise<void>): () => void {
  exitHooks.push(hook);
  return () => {
    const i = exitHooks.indexOf(hook);
    if (i >= 0) exitHooks.splice(i, 1);
  };
}

/** Kills what is still running and removes the temp dirs: on normal end, on error, on Ctrl-C. */
export async function cleanupAll(): Promise<void> {
  // Servers first, so that nothing writes into a database the hooks drop.
  await Promise.all([...children].map((c) => stop(c, 5_000)));
  for (const hook of exitHooks.splice(0)) await hook().catch(() => undefined);
  for (const dir of [...tempDirs]) removeTempDir(dir);
}

/** On Ctrl-C or SIGTERM: stops the servers, runs the cleanup hooks and exits (130). */
export function cleanUpOnSignals(): void {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      process.stdout.write(`\n${signal}: stopping the servers and cleaning up\n`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
}

process.on('exit', () => {
  // Last resort, synchronous: nothing may outlive the benchmark.
  for (const c of children) signal(c, 'SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
