/**
 * `npm run bench`: throughput and latency of the FHIR server over HTTP, on each store engine,
 * against the ceiling of a bare Express app, plus a CPU profile of the hot path. Writes its
 * figures into bench/README.md between the bench markers. See bench/README.md.
 *
 * Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (10), BENCH_PATIENTS (10000),
 * BENCH_WARMUP_SECONDS (1), BENCH_PROFILE_SECONDS (min(5, BENCH_SECONDS)), MONGODB_URI (optional),
 * BENCH_MONGO_PATIENTS (BENCH_PATIENTS, but 500 on FerretDB).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle } from 'fhir/r4';
import { cleanupAll, cleanUpOnSignals, removeTempDir, startNode, stop, tempDir, type Started } from './child';
import { authHeaders, authorize } from './auth';
import { fmt, intEnv, log, SERVER_READY, serverEnv, withThrowawayDatabase } from './common';
import { measure, type Figure } from './measure';
import { INS_SYSTEM, insValue, makePatient, transactionOf } from './patients';
import { summarizeProfile, type ProfileSummary } from './profile';
import { writeReadme, type EngineResult, type Report } from './report';

const ROOT = path.resolve(__dirname, '..', '..');
const SERVER_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const CEILING_MAIN = path.join(__dirname, 'ceiling.js');
const CEILING_READY = /ceiling: listening at (http:\/\/\S+)/;
const BUNDLE_SIZE = 500;

const SECONDS = intEnv('BENCH_SECONDS', 10);
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 10);
const PATIENTS = intEnv('BENCH_PATIENTS', 10_000);
const WARMUP = intEnv('BENCH_WARMUP_SECONDS', 1, 0);
const PROFILE_SECONDS = intEnv('BENCH_PROFILE_SECONDS', Math.min(5, SECONDS));
const PROFILE_PATIENTS = Math.min(PATIENTS, 2_000);
/** Default size of the MongoDB load when the server is FerretDB (see runMongo). */
const FERRETDB_PATIENTS = 500;

const random = (n: number) => Math.floor(Math.random() * n);

/** The env of a server child: no inherited MONGODB_URI unless asked, quiet logs, a free port. */
function serverEnvFor(extra: Record<string, string>): NodeJS.ProcessEnv {
  return serverEnv(tempDir('esf-bench-data-'), { ...extra });
}

/** Loads `count` patients with transaction Bundles (batch if the deployment has no transactions); returns their ids. */
async function loadPatients(fhir: string, count: number): Promise<{ ids: string[]; seconds: number; via: 'transaction' | 'batch' }> {
  const ids: string[] = new Array(count);
  let via: 'transaction' | 'batch' = 'transaction';
  const t0 = performance.now();
  let lastNote = t0;
  for (let from = 0; from < count; from += BUNDLE_SIZE) {
    const to = Math.min(count, from + BUNDLE_SIZE);
    let body = transactionOf(from, to);
    if (via === 'batch') body = body.replace('"type":"transaction"', '"type":"batch"');
    const post = () => fetch(fhir, { method: 'POST', headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', prefer: 'return=minimal', ...authHeaders() }, body });
    let res = await post();
    if (res.status === 501 && via === 'transaction') {
      // e.g. a MongoDB deployment without multi-document transactions (standalone, FerretDB)
      await res.arrayBuffer();
      via = 'batch';
      body = body.replace('"type":"transaction"', '"type":"batch"');
      res = await post();
    }
    const text = await res.text();
    if (res.status !== 200) throw new Error(`loading patients ${from}..${to - 1}: HTTP ${res.status} ${text.slice(0, 500)}`);
    const bundle = JSON.parse(text) as Bundle;
    (bundle.entry ?? []).forEach((e, k) => {
      const status = e.response?.status ?? '';
      const m = /Patient\/([^/]+)\/_history\//.exec(e.response?.location ?? '');
      if (!status.startsWith('201') || !m) throw new Error(`loading patient ${from + k}: entry answered ${status} ${JSON.stringify(e.response?.outcome ?? '').slice(0, 300)}`);
      ids[from + k] = m[1];
    });
    if (bundle.entry?.length !== to - from) throw new Error(`loading patients ${from}..${to - 1}: ${bundle.entry?.length} entries answered`);
    if (performance.now() - lastNote > 15_000 && to < count) {
      lastNote = performance.now();
      log(`  ... ${fmt(to)} loaded after ${fmt((lastNote - t0) / 1000)} s`);
    }
  }
  return { ids, seconds: (performance.now() - t0) / 1000, via };
}

/** The per-request generators of the four measured operations. */
function operations(ids: string[], createFrom: number) {
  let nextCreate = createFrom;
  let revision = 0;
  return {
    create: () => ({ path: '/fhir/Patient', body: JSON.stringify(makePatient(nextCreate++)) }),
    read: () => ({ path: `/fhir/Patient/${ids[random(ids.length)]}` }),
    update: () => {
      const i = random(ids.length);
      return { path: `/fhir/Patient/${ids[i]}`, body: JSON.stringify({ ...makePatient(i, ++revision), id: ids[i] }) };
    },
    search: () => ({ path: `/fhir/Patient?identifier=${encodeURIComponent(`${INS_SYSTEM}|${insValue(random(ids.length))}`)}` }),
  };
}

/** Checks the loaded data answers as expected before timing anything. */
async function sanityCheck(fhir: string, ids: string[]): Promise<string> {
  const read = await fetch(`${fhir}/Patient/${ids[0]}`, { headers: { accept: 'application/fhir+json', ...authHeaders() } });
  const sample = await read.text();
  if (read.status !== 200) throw new Error(`sanity check: GET Patient/${ids[0]} answered ${read.status}`);
  const k = ids.length - 1;
  const search = await fetch(`${fhir}/Patient?identifier=${encodeURIComponent(`${INS_SYSTEM}|${insValue(k)}`)}`, { headers: { accept: 'application/fhir+json', ...authHeaders() } });
  const bundle = (await search.json()) as Bundle;
  if (search.status !== 200 || bundle.entry?.length !== 1 || bundle.entry[0].resource?.id !== ids[k]) {
    throw new Error(`sanity check: the search by INS of patient ${k} answered ${search.status} with ${bundle.entry?.length ?? 0} entries`);
  }
  return sample;
}

async function timed(label: string, origin: string, method: 'GET' | 'POST' | 'PUT', next: () => { path: string; body?: string }, connections = CONNECTIONS, seconds = SECONDS): Promise<Figure> {
  if (WARMUP > 0) await measure({ label, origin, method, next, seconds: WARMUP, connections });
  const f = await measure({ label, origin, method, next, seconds, connections });
  const bad = f.non2xx + f.errors + f.timeouts;
  if (f.total === 0) log(`  ${label.padEnd(22)} NO REQUEST COMPLETED in ${seconds} s (errors ${f.errors}, timeouts ${f.timeouts})`);
  else log(
    `  ${label.padEnd(22)} ${fmt(f.requestsPerSec).padStart(7)} req/s   p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(4)} ms   non-2xx ${f.non2xx}${bad ? `  <-- NOT ZERO (errors ${f.errors}, timeouts ${f.timeouts}, statuses ${JSON.stringify(f.otherStatuses)})` : ''}`,
  );
  return f;
}

async function runEngine(key: 'sqlite' | 'mongodb', title: string, env: Record<string, string>, note?: string, patients = PATIENTS): Promise<{ result: EngineResult; sample?: string }> {
  const result: EngineResult = { key, title, note, figures: [] };
  log(`\n== ${title}${note ? ` (${note})` : ''}`);
  let server: Started | undefined;
  try {
    const senv = serverEnvFor(env);
    server = await startNode(`server (${key})`, [SERVER_MAIN], senv, SERVER_READY, ROOT);
    await authorize(server.url, senv.DATA_DIR!);
    const fhir = `${server.url}/fhir`;
    const origin = server.url;
    log(`  server at ${fhir}; loading ${fmt(patients)} FR Core Patients in Bundles of ${BUNDLE_SIZE}...`);
    const loaded = await loadPatients(fhir, patients);
    result.load = { patients, seconds: loaded.seconds, via: loaded.via };
    log(`  loaded in ${fmt(loaded.seconds, 1)} s (${fmt(patients / loaded.seconds)} patients/s, ${loaded.via} Bundles)`);
    const sample = await sanityCheck(fhir, loaded.ids);
    const ops = operations(loaded.ids, patients + 1_000_000);
    result.figures.push(await timed('create (POST)', origin, 'POST', ops.create));
    result.figures.push(await timed('read by id (GET)', origin, 'GET', ops.read));
    result.figures.push(await timed('update (PUT)', origin, 'PUT', ops.update));
    result.figures.push(await timed('search by identifier', origin, 'GET', ops.search));
    return { result, sample };
  } catch (e) {
    result.error = (e as Error).message;
    log(`  FAILED: ${result.error}${server ? `\n--- server stderr ---\n${server.stderrTail()}` : ''}`);
    return { result };
  } finally {
    if (server) result.serverExit = await stop(server.child);
  }
}

async function runCeiling(sample: string): Promise<Figure | undefined> {
  log('\n== ceiling: bare Express 5, same Patient JSON from memory');
  const dir = tempDir('esf-bench-ceiling-');
  const file = path.join(dir, 'patient.json');
  fs.writeFileSync(file, sample);
  let ceiling: Started | undefined;
  try {
    ceiling = await startNode('ceiling', [CEILING_MAIN], { ...process.env, PORT: '0', HOST: '127.0.0.1', CEILING_BODY_FILE: file }, CEILING_READY, ROOT);
    return await timed('GET (ceiling)', ceiling.url, 'GET', () => ({ path: `/fhir/Patient/${random(1e9)}` }));
  } catch (e) {
    log(`  FAILED: ${(e as Error).message}`);
    return undefined;
  } finally {
    if (ceiling) await stop(ceiling.child);
    removeTempDir(dir);
  }
}

/** The SQLite server once more under `node --cpu-prof`, during reads and creates at the same time. */
async function runProfile(): Promise<{ summary?: ProfileSummary; figures: Figure[]; error?: string }> {
  const half = Math.max(1, Math.floor(CONNECTIONS / 2));
  log(`\n== hot-path profile: SQLite server under --cpu-prof, ${PROFILE_SECONDS} s of reads + creates (${half} + ${half} connections)`);
  const dataDir = tempDir('esf-bench-prof-data-');
  const profDir = tempDir('esf-bench-prof-');
  let server: Started | undefined;
  try {
    server = await startNode('server (profiled)', ['--cpu-prof', `--cpu-prof-dir=${profDir}`, SERVER_MAIN], serverEnvFor({ DATA_DIR: dataDir }), SERVER_READY, ROOT);
    await authorize(server.url, dataDir);
    const { ids } = await loadPatients(`${server.url}/fhir`, PROFILE_PATIENTS);
    const ops = operations(ids, PATIENTS + 5_000_000);
    // warm up outside the window, then profile only the steady state
    if (WARMUP > 0) await Promise.all([measure({ label: 'w', origin: server.url, method: 'GET', next: ops.read, seconds: WARMUP, connections: half }), measure({ label: 'w', origin: server.url, method: 'POST', next: ops.create, seconds: WARMUP, connections: half })]);
    const startUs = Number(process.hrtime.bigint() / 1000n);
    const figures = await Promise.all([
      measure({ label: 'read by id (GET)', origin: server.url, method: 'GET', next: ops.read, seconds: PROFILE_SECONDS, connections: half }),
      measure({ label: 'create (POST)', origin: server.url, method: 'POST', next: ops.create, seconds: PROFILE_SECONDS, connections: half }),
    ]);
    const endUs = Number(process.hrtime.bigint() / 1000n);
    for (const f of figures) log(`  under profiler: ${f.label.padEnd(18)} ${fmt(f.requestsPerSec)} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms, non-2xx ${f.non2xx}`);
    await stop(server.child);
    server = undefined;
    const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('the server wrote no .cpuprofile');
    const summary = summarizeProfile(path.join(profDir, file), ROOT, { startUs, endUs });
    log(`  profile: ${fmt(summary.busyMs)} ms busy, ${fmt(summary.idleMs)} ms idle in the ${summary.windowed ? 'load window' : 'whole run (the load window could not be matched)'}`);
    log('  top self time:');
    for (const r of summary.functions) log(`    ${fmt(r.percent, 1).padStart(5)} %  ${fmt(r.selfMs).padStart(6)} ms  ${r.name}  ${r.where}`);
    log('  by module:');
    for (const r of summary.modules) log(`    ${fmt(r.percent, 1).padStart(5)} %  ${fmt(r.selfMs).padStart(6)} ms  ${r.name}`);
    return { summary, figures };
  } catch (e) {
    log(`  FAILED: ${(e as Error).message}`);
    return { figures: [], error: (e as Error).message };
  } finally {
    if (server) await stop(server.child);
    removeTempDir(dataDir);
    removeTempDir(profDir);
  }
}

async function runMongo(uri: string): Promise<EngineResult> {
  try {
    return await withThrowawayDatabase(uri, 'espace_sante_bench', async ({ name, uri: benchUri, build, hello }) => {
      const deployment = hello.setName ? `replica set ${hello.setName}` : hello.msg === 'isdbgrid' ? 'sharded' : 'standalone';
      const ferret = build.ferretdbVersion === undefined ? undefined : /^\d/.test(build.ferretdbVersion) ? `FerretDB ${build.ferretdbVersion}` : `FerretDB (version "${build.ferretdbVersion}")`;
      const title = ferret ? `MongoDB engine, measured against ${ferret}` : `MongoDB engine (MongoDB ${build.version})`;
      // FerretDB v1 answers a find on a field other than _id by scanning the collection, so every
      // read and write costs time in proportion to the collection: 10,000 patients would take hours.
      const patients = process.env.BENCH_MONGO_PATIENTS ? intEnv('BENCH_MONGO_PATIENTS', PATIENTS) : ferret ? Math.min(PATIENTS, FERRETDB_PATIENTS) : PATIENTS;
      const fewer = patients < PATIENTS ? `; ${fmt(patients)} patients instead of ${fmt(PATIENTS)}: FerretDB scans the collection on every find by id, so its costs grow with the collection (BENCH_MONGO_PATIENTS to change)` : '';
      const note = `${ferret ? `FerretDB reports MongoDB ${build.version}; not a MongoDB server; ` : ''}${deployment}, fresh database ${name}${fewer}`;
      return (await runEngine('mongodb', title, { MONGODB_URI: benchUri }, note, patients)).result;
    });
  } catch (e) {
    const error = (e as Error).message;
    log(`\n== MongoDB engine: FAILED: ${error}`);
    return { key: 'mongodb', title: 'MongoDB engine', figures: [], error };
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = new Date();
  const cpus = os.cpus();
  log(`espace-sante-fhir bench: ${fmt(PATIENTS)} patients, ${SECONDS} s per figure (+${WARMUP} s warm-up), ${CONNECTIONS} connections`);
  log(`machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, ${os.platform()} ${os.release()}, node ${process.version}`);

  const engines: EngineResult[] = [];
  const dataDir = tempDir('esf-bench-sqlite-');
  const sqlite = await runEngine('sqlite', 'Embedded engine (SQLite)', { DATA_DIR: dataDir });
  removeTempDir(dataDir);
  engines.push(sqlite.result);

  const ceiling = await runCeiling(sqlite.sample ?? JSON.stringify({ ...makePatient(0), id: '00000000-0000-4000-8000-000000000000' }));

  const mongoUri = process.env.MONGODB_URI;
  let mongoSkipped: string | undefined;
  if (mongoUri) engines.push(await runMongo(mongoUri));
  else {
    mongoSkipped = 'MONGODB_URI is not set, so the MongoDB engine was skipped. To measure it: `MONGODB_URI=mongodb://127.0.0.1:27017 npm run bench` (any MongoDB or FerretDB; the bench uses a fresh database on it and drops it afterwards).';
    log(`\n== MongoDB engine: SKIPPED. ${mongoSkipped}`);
  }

  const profile = await runProfile();

  const report: Report = {
    date: started,
    machine: { cores: cpus.length, cpu: cpus[0]?.model.trim() ?? 'unknown', memGiB: os.totalmem() / 2 ** 30, os: `${os.platform()} ${os.release()}`, node: process.version },
    settings: { seconds: SECONDS, warmup: WARMUP, connections: CONNECTIONS, patients: PATIENTS, bundleSize: BUNDLE_SIZE, profileSeconds: PROFILE_SECONDS, profilePatients: PROFILE_PATIENTS },
    ceiling,
    engines,
    mongoSkipped,
    profile,
  };
  const section = writeReadme(path.join(ROOT, 'bench', 'README.md'), report);
  log('\n' + section.targets.join('\n'));
  log(`\nresults written to bench/README.md`);
  if (engines.some((e) => e.error) || !ceiling) process.exitCode = 1;
}

cleanUpOnSignals();

// `npm run bench -- search`: the search section only (bench/search.ts), which is opt-in because it
// takes longer than the rest of the benchmark together (see bench/README.md).
const section = process.argv.slice(2).includes('search') ? import('./search').then(async (m) => {
  if ((await m.runSearchBench()).failed) process.exitCode = 1;
}) : main();
section
  .catch((e: Error) => {
    process.stderr.write(`bench failed: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
