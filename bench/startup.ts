/**
 * `npm run bench:startup`: how long a newcomer waits. Starts the server as `npm start` does (the
 * npm script itself, on a fresh empty DATA_DIR, the embedded store) and times, from the spawn, the
 * first 200 of GET /fhir/metadata and the first authorized write (the README's quick start: a token
 * with the administrator's secret, then POST a Patient); then `npm run cli -- client list` on that
 * data directory. Several runs; the median is printed. See bench/README.md.
 *
 * Environment: BENCH_STARTUP_RUNS (5); BENCH_STARTUP_ROOT, the checkout whose `npm start` is timed
 * (default: this one), e.g. a clone of an earlier commit to compare with in the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { authHeaders, authorize } from './auth';
import { cleanupAll, cleanUpOnSignals, removeTempDir, stop, tempDir, track } from './child';
import { fmt, intEnv, log, serverEnv } from './common';

const ROOT = path.resolve(process.env.BENCH_STARTUP_ROOT || path.join(__dirname, '..', '..'));
const RUNS = intEnv('BENCH_STARTUP_RUNS', 5);
const DEADLINE_MS = 300_000;

interface Run {
  metadata: number;
  write: number;
  cli: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/** `npm <args>` in the repository, in a process group of its own (npm runs the script through a shell). */
function npm(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return track(spawn('npm', args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'ignore'], detached: true }), true);
}

/** Retries `attempt` until it returns a value (undefined or a thrown error: again in 50 ms). */
async function until<T>(what: string, child: ChildProcess, attempt: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}) before ${what}`);
    const v = await attempt().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`no ${what} within ${DEADLINE_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function once(): Promise<Run> {
  const dataDir = tempDir('esf-startup-');
  fs.rmdirSync(dataDir); // empty and absent: the server creates it, as on a fresh clone
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env = serverEnv(dataDir, { PORT: String(port) });
  delete env.VALIDATION_CACHE_DIR;
  const t0 = performance.now();
  const server = npm(['start', '--silent'], env);
  try {
    await until('an answer to GET /fhir/metadata', server, async () => ((await fetch(`${origin}/fhir/metadata`)).status === 200 ? true : undefined));
    const metadata = performance.now() - t0;
    // the administrator's secret is written once the server is ready
    await until('a token', server, async () => authorize(origin, dataDir).then(() => true));
    const created = await fetch(`${origin}/fhir/Patient`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Lefèvre', given: ['Hélène'] }], gender: 'female', birthDate: '1980-08-01' }),
    });
    if (created.status !== 201) throw new Error(`the first write answered ${created.status}: ${await created.text()}`);
    const write = performance.now() - t0;
    const t1 = performance.now();
    const cli = npm(['run', '--silent', 'cli', '--', 'client', 'list'], env);
    const code = await new Promise<number | null>((resolve) => cli.once('exit', resolve));
    if (code !== 0) throw new Error(`npm run cli -- client list exited with ${code}`);
    return { metadata, write, cli: performance.now() - t1 };
  } finally {
    await stop(server);
    removeTempDir(dataDir);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const seconds = (ms: number) => fmt(ms / 1000, 1);

async function main(): Promise<void> {
  cleanUpOnSignals();
  log(`Start-up: npm start in ${ROOT} on a fresh DATA_DIR, ${RUNS} runs (seconds from the spawn of npm)`);
  log();
  log('| run | first GET /fhir/metadata 200 | first authorized write 201 | npm run cli -- client list |');
  log('|---:|---:|---:|---:|');
  const runs: Run[] = [];
  for (let i = 1; i <= RUNS; i++) {
    const r = await once();
    runs.push(r);
    log(`| ${i} | ${seconds(r.metadata)} | ${seconds(r.write)} | ${seconds(r.cli)} |`);
  }
  log(`| **median** | **${seconds(median(runs.map((r) => r.metadata)))}** | **${seconds(median(runs.map((r) => r.write)))}** | **${seconds(median(runs.map((r) => r.cli)))}** |`);
}

main()
  .catch((e: Error) => {
    process.stderr.write(`bench:startup failed: ${e.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
