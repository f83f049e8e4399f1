/**
 * The search benchmark (`npm run bench:search`, or `npm run bench -- search`): the real server on
 * each engine, loaded through HTTP with transaction Bundles of the data set of search-data.ts, and
 * the common searches timed with autocannon at two sizes (10,000 then 100,000 resources by
 * default), so that the growth of each query's latency with the size of the database shows.
 * Writes its figures into bench/README.md between the bench-search markers.
 *
 * Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (10), BENCH_WARMUP_SECONDS (1),
 * BENCH_SEARCH_RESOURCES (100000; the first size is a tenth of it), MONGODB_URI (optional),
 * BENCH_MONGO_RESOURCES (BENCH_SEARCH_RESOURCES, but 2000 on FerretDB), BENCH_KEEP_DATA=1 (keep the
 * SQLite DATA_DIR and print its path, e.g. to run EXPLAIN QUERY PLAN on it).
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle } from 'fhir/r4';
import { cleanupAll, cleanUpOnSignals, removeTempDir, startNode, stop, tempDir, type Started } from './child';
import { authHeaders, authorize } from './auth';
import { fmt, intEnv, log, SERVER_READY, serverEnv, withThrowawayDatabase } from './common';
import { measure, type Figure } from './measure';
import { makePatient } from './patients';
import {
  BLOCK_SIZE, DAY, DOC_TYPES, emptyFacts, GLUCOSE, INS_SYSTEM, insValue, ISO, LOINC, nextMonday, OBS_KINDS, PATIENTS_PER_BLOCK, RPPS_SYSTEM, rppsOf, blockEntries,
  type Entry, type Facts,
} from './search-data';

const ROOT = path.resolve(__dirname, '..', '..');
const SERVER_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const BUNDLE_ENTRIES = 500;
const README = path.join(ROOT, 'bench', 'README.md');
export const START = '<!-- bench-search:start -->';
export const END = '<!-- bench-search:end -->';
/** A run with BENCH_SEARCH_ENGINES=mongodb writes into its own markers, keeping the embedded engine's figures. */
export const MONGO_START = '<!-- bench-search-mongo:start -->';
export const MONGO_END = '<!-- bench-search-mongo:end -->';

const SECONDS = intEnv('BENCH_SECONDS', 10);
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 10);
const WARMUP = intEnv('BENCH_WARMUP_SECONDS', 1, 0);
const RESOURCES = intEnv('BENCH_SEARCH_RESOURCES', 100_000, 2 * BLOCK_SIZE);
const FERRETDB_RESOURCES = 2_000;
/** p99 target of every query but :contains / :text, on the embedded engine. */
const P99_TARGET_MS = 20;
/** Latency ratio (100k / 10k) still counted as logarithmic growth: log(100k)/log(10k) = 1.25, with room for noise. */
const LOG_GROWTH_MAX = 1.5;

const random = (n: number) => Math.floor(Math.random() * n);
const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------
// Loading

interface Loaded {
  blocks: number;
  facts: Facts;
  /** server ids by entity */
  ids: { Practitioner: string[]; Patient: string[]; DocumentReference: string[]; Observation: string[]; Appointment: string[] };
  /** urn:uuid -> Type/id of everything loaded so far (references across Bundles) */
  resolved: Map<string, string>;
  via: 'transaction' | 'batch';
}

const newLoaded = (): Loaded => ({ blocks: 0, facts: emptyFacts(), ids: { Practitioner: [], Patient: [], DocumentReference: [], Observation: [], Appointment: [] }, resolved: new Map(), via: 'transaction' });

/** The id a batch load gives an entry (batch Bundles do not resolve urn:uuid references, so it PUTs with known ids). */
const batchId = (urn: string) => `sb-${urn.slice(-12)}`;

function bundleOf(entries: Entry[], loaded: Loaded): string {
  const typeOfUrn = new Map(entries.map((e) => [e.urn, e.resource.resourceType]));
  const body = JSON.stringify({
    resourceType: 'Bundle',
    type: loaded.via,
    entry: entries.map((e) =>
      loaded.via === 'transaction'
        ? { fullUrl: e.urn, resource: e.resource, request: { method: 'POST', url: e.resource.resourceType } }
        : { fullUrl: `${e.resource.resourceType}/${batchId(e.urn)}`, resource: { ...e.resource, id: batchId(e.urn) }, request: { method: 'PUT', url: `${e.resource.resourceType}/${batchId(e.urn)}` } },
    ),
  });
  return body.replace(/"reference":"(urn:uuid:[^"]+)"/g, (all, urn: string) => {
    const done = loaded.resolved.get(urn);
    if (done) return `"reference":"${done}"`;
    if (loaded.via === 'batch') return `"reference":"${typeOfUrn.get(urn)}/${batchId(urn)}"`;
    return all;
  });
}

/** Loads blocks [loaded.blocks, toBlocks) in Bundles of 500 entries; returns the seconds it took. */
async function loadBlocks(fhir: string, loaded: Loaded, toBlocks: number, now: number): Promise<number> {
  const t0 = performance.now();
  let lastNote = t0;
  let queue: Entry[] = [];
  const send = async (entries: Entry[]) => {
    let body = bundleOf(entries, loaded);
    const post = () => fetch(fhir, { method: 'POST', headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', prefer: 'return=minimal', ...authHeaders() }, body });
    let res = await post();
    if (res.status === 501 && loaded.via === 'transaction') {
      // a MongoDB deployment without multi-document transactions (standalone, FerretDB)
      await res.arrayBuffer();
      loaded.via = 'batch';
      body = bundleOf(entries, loaded);
      res = await post();
    }
    const text = await res.text();
    if (res.status !== 200) throw new Error(`loading a Bundle: HTTP ${res.status} ${text.slice(0, 800)}`);
    const bundle = JSON.parse(text) as Bundle;
    if (bundle.entry?.length !== entries.length) throw new Error(`loading a Bundle of ${entries.length}: ${bundle.entry?.length} entries answered`);
    bundle.entry.forEach((r, k) => {
      const e = entries[k];
      const status = r.response?.status ?? '';
      const m = /^(?:.*\/)?([A-Za-z]+)\/([^/]+)\/_history\//.exec(r.response?.location ?? '');
      if (!/^20[01]/.test(status) || !m) throw new Error(`loading ${e.what.join(' ')}: entry answered ${status} ${JSON.stringify(r.response?.outcome ?? '').slice(0, 600)}`);
      loaded.resolved.set(e.urn, `${m[1]}/${m[2]}`);
      loaded.ids[e.what[0]][e.what[1]] = m[2];
    });
  };
  for (let b = loaded.blocks; b < toBlocks; b++) {
    queue.push(...blockEntries(b, now, loaded.facts));
    while (queue.length >= BUNDLE_ENTRIES || (b === toBlocks - 1 && queue.length > 0)) {
      const chunk = queue.slice(0, BUNDLE_ENTRIES);
      queue = queue.slice(BUNDLE_ENTRIES);
      await send(chunk);
    }
    if (performance.now() - lastNote > 15_000 && b < toBlocks - 1) {
      lastNote = performance.now();
      log(`  ... ${fmt((b + 1) * BLOCK_SIZE)} resources loaded after ${fmt((lastNote - t0) / 1000)} s`);
    }
  }
  loaded.blocks = toBlocks;
  return (performance.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Queries

interface Request {
  path: string;
  /** the exact number of matches, when the data set tells it */
  expected?: number;
  /** checks the body beyond the total (returns a complaint, or undefined) */
  check?: (body: string) => string | undefined;
}

interface Query {
  key: string;
  label: string;
  /** :contains / :text: no p99 target */
  slow?: boolean;
  next: () => Request;
}

const norm = (s: string) => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
const day = (ms: number) => ISO(ms).slice(0, 10);

function queries(l: Loaded, now: number): Query[] {
  const f = l.facts;
  const patients = l.blocks * PATIENTS_PER_BLOCK;
  const pid = (p: number) => l.ids.Patient[p];
  // per-patient and per-practitioner views of the facts, for the expected answers
  const obsOf: number[][] = Array.from({ length: patients }, () => []);
  f.observations.forEach((o, i) => obsOf[o.patient].push(i));
  const docsOf: number[][] = Array.from({ length: patients }, () => []);
  f.docs.forEach((d, i) => docsOf[d.patient].push(i));
  const monday = nextMonday(now);
  const texts = [...new Set(OBS_KINDS.map((k) => k.display.split(/[ /[]/)[0].toLowerCase()))];
  return [
    {
      key: 'ins',
      label: 'Patient by INS identifier',
      next: () => ({ path: `/fhir/Patient?identifier=${enc(`${INS_SYSTEM}|${insValue(random(patients))}`)}`, expected: 1 }),
    },
    {
      key: 'docs',
      label: 'DocumentReference by patient + type + date range, _sort=-date',
      next: () => {
        const doc = f.docs[random(f.docs.length)];
        const lo = doc.date - 180 * DAY;
        const hi = doc.date + 180 * DAY;
        const expected = docsOf[doc.patient].filter((i) => f.docs[i].type === doc.type && f.docs[i].date >= lo && f.docs[i].date < hi).length;
        return { path: `/fhir/DocumentReference?patient=Patient/${pid(doc.patient)}&type=${enc(`${LOINC}|${doc.type}`)}&date=ge${enc(ISO(lo))}&date=lt${enc(ISO(hi))}&_sort=-date`, expected };
      },
    },
    {
      key: 'glucose',
      label: 'last glucose Observation (_sort=-date&_count=1)',
      next: () => {
        const p = random(patients);
        const glucose = obsOf[p].filter((i) => f.observations[i].code === GLUCOSE);
        const last = ISO(Math.max(...glucose.map((i) => f.observations[i].time)));
        return {
          path: `/fhir/Observation?patient=Patient/${pid(p)}&code=${enc(`${LOINC}|${GLUCOSE}`)}&_sort=-date&_count=1`,
          expected: glucose.length,
          check: (body) => (body.includes(`"effectiveDateTime":"${last}"`) ? undefined : `the entry is not the last glucose (${last})`),
        };
      },
    },
    {
      key: 'agenda',
      label: 'Appointments of a practitioner next week',
      next: () => {
        const b = random(l.blocks);
        const expected = f.appointments.filter((a) => a.practitioner === b && a.start >= monday && a.start < monday + 7 * DAY).length;
        return { path: `/fhir/Appointment?actor=Practitioner/${l.ids.Practitioner[b]}&date=ge${day(monday)}&date=lt${day(monday + 7 * DAY)}`, expected };
      },
    },
    {
      key: 'chain1',
      label: 'chain: DocumentReference?subject:Patient.identifier=INS',
      next: () => {
        const p = random(patients);
        return { path: `/fhir/DocumentReference?subject:Patient.identifier=${enc(`${INS_SYSTEM}|${insValue(p)}`)}`, expected: docsOf[p].length };
      },
    },
    {
      key: 'chain2',
      label: 'chain: Observation?patient.general-practitioner.identifier=RPPS',
      next: () => {
        const b = random(l.blocks);
        let expected = 0;
        for (let p = b * PATIENTS_PER_BLOCK; p < (b + 1) * PATIENTS_PER_BLOCK; p++) expected += obsOf[p].length;
        return { path: `/fhir/Observation?patient.general-practitioner.identifier=${enc(`${RPPS_SYSTEM}|${rppsOf(b)}`)}`, expected };
      },
    },
    {
      key: 'include',
      label: '_include: Observation?patient=X&_include=Observation:patient',
      next: () => {
        const p = random(patients);
        return {
          path: `/fhir/Observation?patient=Patient/${pid(p)}&_include=Observation:patient`,
          expected: obsOf[p].length,
          check: (body) => (body.includes(`"fullUrl":"`) && body.split('"mode":"include"').length === 2 && body.includes(`/Patient/${pid(p)}"`) ? undefined : 'the patient is not included once'),
        };
      },
    },
    {
      key: 'contains',
      label: 'Patient?name:contains=… (slow kind)',
      slow: true,
      next: () => {
        const family = norm(makePatient(random(patients)).name![0].family!);
        const at = 1 + random(Math.max(1, family.length - 3));
        return { path: `/fhir/Patient?name:contains=${enc(family.slice(at, at + 3))}` };
      },
    },
    {
      key: 'text',
      label: 'Observation?code:text=… (slow kind)',
      slow: true,
      next: () => ({ path: `/fhir/Observation?code:text=${enc(texts[random(texts.length)])}` }),
    },
  ];
}

/** Bundle.total (or, without it, the number of match entries) of a searchset. */
function totalOf(body: string): number | undefined {
  const m = /"type":"searchset","total":(\d+)/.exec(body.slice(0, 300));
  if (m) return Number(m[1]);
  if (!body.startsWith('{"resourceType":"Bundle"')) return undefined;
  return body.split('"mode":"match"').length - 1;
}

export interface QueryFigure extends Figure {
  key: string;
  slow: boolean;
  /** average Bundle.total over the timed responses */
  avgMatches: number;
  /** share of responses that matched nothing */
  zeroShare: number;
  /** sampled before timing: requests whose total or content differed from the data set's answer */
  wrong: string[];
}

/** A few requests checked against the data set's answer before any timing. */
async function verify(origin: string, q: Query, samples = 5): Promise<string[]> {
  const wrong: string[] = [];
  for (let i = 0; i < samples; i++) {
    const r = q.next();
    // counted here (the timed requests ask for no total, as clients do by default)
    const res = await fetch(`${origin}${r.path}${r.path.includes('?') ? '&' : '?'}_total=accurate`, { headers: { accept: 'application/fhir+json', ...authHeaders() } });
    const body = await res.text();
    if (res.status !== 200) {
      wrong.push(`${r.path} answered ${res.status}: ${body.slice(0, 300)}`);
      continue;
    }
    const total = totalOf(body);
    if (r.expected !== undefined && total !== r.expected) wrong.push(`${r.path} matched ${total}, expected ${r.expected}`);
    const complaint = r.check?.(body);
    if (complaint) wrong.push(`${r.path}: ${complaint}`);
  }
  return wrong;
}

async function timeQuery(origin: string, q: Query): Promise<QueryFigure> {
  const wrong = await verify(origin, q);
  let sum = 0;
  let n = 0;
  let zeros = 0;
  const next = () => ({ path: q.next().path });
  const onResponse = (status: number, body: string) => {
    if (status !== 200) return;
    const t = totalOf(body);
    if (t === undefined) return;
    sum += t;
    n++;
    if (t === 0) zeros++;
  };
  if (WARMUP > 0) await measure({ label: q.label, origin, method: 'GET', next, seconds: WARMUP, connections: CONNECTIONS });
  const f = await measure({ label: q.label, origin, method: 'GET', next, seconds: SECONDS, connections: CONNECTIONS, onResponse });
  const fig: QueryFigure = { ...f, key: q.key, slow: !!q.slow, avgMatches: n ? sum / n : 0, zeroShare: n ? zeros / n : 0, wrong };
  const bad = f.non2xx + f.errors + f.timeouts;
  if (f.total === 0) log(`  ${q.key.padEnd(9)} NO REQUEST COMPLETED in ${SECONDS} s (errors ${f.errors}, timeouts ${f.timeouts})`);
  else log(
    `  ${q.key.padEnd(9)} ${fmt(f.requestsPerSec).padStart(6)} req/s  p50 ${String(f.p50).padStart(4)} ms  p99 ${String(f.p99).padStart(5)} ms  mean ${fmt(f.mean, 2).padStart(7)} ms  non-2xx ${f.non2xx}  matches ${fmt(fig.avgMatches, 1)} avg${fig.zeroShare ? ` (${fmt(100 * fig.zeroShare, 1)} % none)` : ''}${bad ? `  <-- NOT ZERO (errors ${f.errors}, timeouts ${f.timeouts}, ${JSON.stringify(f.otherStatuses)})` : ''}`,
  );
  for (const w of wrong) log(`     WRONG ANSWER: ${w}`);
  return fig;
}

// ---------------------------------------------------------------------------------------------
// Engines

export interface SizeResult {
  resources: number;
  /** seconds of the load that reached this size (from the previous size) */
  loadSeconds: number;
  loadedResources: number;
  figures: QueryFigure[];
}

export interface SearchEngineResult {
  key: 'sqlite' | 'mongodb';
  title: string;
  note?: string;
  via?: 'transaction' | 'batch';
  sizes: SizeResult[];
  error?: string;
}

function serverEnvFor(extra: Record<string, string>): NodeJS.ProcessEnv {
  return serverEnv(tempDir('esf-bench-data-'), { REQUIRED_PROFILES: 'none', ...extra });
}

async function runEngine(key: 'sqlite' | 'mongodb', title: string, env: Record<string, string>, total: number, note?: string): Promise<SearchEngineResult> {
  const result: SearchEngineResult = { key, title, note, sizes: [] };
  const blocks = Math.max(2, Math.round(total / BLOCK_SIZE));
  const sizes = [Math.max(1, Math.round(blocks / 10)), blocks];
  log(`\n== ${title}${note ? ` (${note})` : ''}`);
  let server: Started | undefined;
  const now = Date.now();
  try {
    const senv = serverEnvFor(env);
    server = await startNode(`server (${key})`, [SERVER_MAIN], senv, SERVER_READY, ROOT, 120_000);
    await authorize(server.url, senv.DATA_DIR!);
    const fhir = `${server.url}/fhir`;
    const loaded = newLoaded();
    for (const size of sizes) {
      const from = loaded.blocks * BLOCK_SIZE;
      log(`  loading resources ${fmt(from)}..${fmt(size * BLOCK_SIZE)} in Bundles of ${BUNDLE_ENTRIES}...`);
      const seconds = await loadBlocks(fhir, loaded, size, now);
      const n = size * BLOCK_SIZE - from;
      log(`  loaded ${fmt(n)} in ${fmt(seconds, 1)} s (${fmt(n / seconds)} resources/s, ${loaded.via} Bundles); now ${fmt(size * BLOCK_SIZE)} resources, ${fmt(size * PATIENTS_PER_BLOCK)} patients, ${fmt(size)} practitioners`);
      result.via = loaded.via;
      const sizeResult: SizeResult = { resources: size * BLOCK_SIZE, loadSeconds: seconds, loadedResources: n, figures: [] };
      result.sizes.push(sizeResult);
      for (const q of queries(loaded, now)) sizeResult.figures.push(await timeQuery(server.url, q));
    }
    return result;
  } catch (e) {
    result.error = (e as Error).message;
    log(`  FAILED: ${result.error}${server ? `\n--- server stderr ---\n${server.stderrTail()}` : ''}`);
    return result;
  } finally {
    if (server) await stop(server.child);
  }
}

async function runMongo(uri: string): Promise<SearchEngineResult> {
  try {
    return await withThrowawayDatabase(uri, 'espace_sante_bench_search', async ({ name, uri: dbUri, build }) => {
      const ferret = build.ferretdbVersion !== undefined;
      const title = ferret ? 'MongoDB engine measured against FerretDB v1 (SQLite backend)' : `MongoDB engine (MongoDB ${build.version})`;
      const total = process.env.BENCH_MONGO_RESOURCES ? intEnv('BENCH_MONGO_RESOURCES', RESOURCES, 2 * BLOCK_SIZE) : ferret ? FERRETDB_RESOURCES : RESOURCES;
      const note = `${ferret ? `FerretDB ${build.ferretdbVersion} reports MongoDB ${build.version}; not a MongoDB server; it answers every find that is not by _id by scanning the collection (no index use), so ` : ''}${fmt(total)} resources${total < RESOURCES ? ` instead of ${fmt(RESOURCES)} (BENCH_MONGO_RESOURCES to change)` : ''}; fresh database ${name}`;
      return await runEngine('mongodb', title, { MONGODB_URI: dbUri }, total, note);
    });
  } catch (e) {
    const error = (e as Error).message;
    log(`\n== MongoDB engine: FAILED: ${error}`);
    return { key: 'mongodb', title: 'MongoDB engine', sizes: [], error };
  }
}

// ---------------------------------------------------------------------------------------------
// Report

export interface SearchReport {
  date: Date;
  machine: string;
  code: string;
  settings: { seconds: number; warmup: number; connections: number; resources: number };
  engines: SearchEngineResult[];
  mongoSkipped?: string;
  minutes: number;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
const x = (r: number) => (Number.isFinite(r) ? `${fmt(r, 2)}×` : 'n/a');

/** Growth verdict of one query: on the p50 ratio, or on the mean ratio when p50 is too coarse (whole ms, ≤ 3 ms). */
function growth(small: QueryFigure, big: QueryFigure): { p50: number; mean: number; rps: number; on: 'p50' | 'mean'; ok: boolean } {
  const p50 = ratio(big.p50, small.p50);
  const mean = ratio(big.mean, small.mean);
  const rps = ratio(small.requestsPerSec, big.requestsPerSec);
  const on = small.p50 <= 3 ? 'mean' : 'p50';
  const r = on === 'p50' ? p50 : mean;
  return { p50, mean, rps, on, ok: Number.isFinite(r) && r <= LOG_GROWTH_MAX };
}

export function verdicts(e: SearchEngineResult): string[] {
  const out: string[] = [];
  const [small, big] = e.sizes;
  if (!big) return [`${e.title}: not measured at both sizes${e.error ? ` (${e.error.split('\n')[0]})` : ''}`];
  for (const f of big.figures) {
    const s = small.figures.find((g) => g.key === f.key)!;
    const g = growth(s, f);
    const bad = f.non2xx + f.errors + f.timeouts + s.non2xx + s.errors + s.timeouts;
    const p99 = f.slow ? `p99 ${f.p99} ms (no target: ${f.key === 'contains' ? ':contains' : ':text'})` : `p99 ${f.p99} ms < ${P99_TARGET_MS} ms: ${f.p99 < P99_TARGET_MS ? 'PASS' : 'FAIL'}`;
    const grows = `growth ${g.on} ${x(g.on === 'p50' ? g.p50 : g.mean)} ≤ ${LOG_GROWTH_MAX}×: ${g.ok ? 'PASS (logarithmic or better)' : 'FAIL (worse than logarithmic)'}`;
    const wrong = [...s.wrong, ...f.wrong].length;
    out.push(`${f.key}: ${p99}; ${grows}; non-2xx ${bad ? `**${bad}** FAIL` : '0'}${wrong ? `; **${wrong} wrong answers**` : ''}`);
  }
  return out;
}

function engineSection(e: SearchEngineResult, r: SearchReport): string[] {
  const out = [`### ${e.title}`, ''];
  if (e.note) out.push(`_${e.note}_`, '');
  if (e.error) out.push(`**Failed:** \`${e.error.split('\n')[0].slice(0, 300)}\``, '');
  if (e.sizes.length) {
    out.push(`Loading (${e.via} Bundles of ${BUNDLE_ENTRIES} through HTTP): ${e.sizes.map((s) => `${fmt(s.loadedResources)} resources in ${fmt(s.loadSeconds, 1)} s (${fmt(s.loadedResources / s.loadSeconds)}/s)`).join(', then ')}.`, '');
  }
  const [small, big] = e.sizes;
  if (!small) return out;
  const sz = (s: SizeResult) => (s.resources >= 1000 ? `${fmt(s.resources / 1000)}k` : fmt(s.resources));
  if (!big) {
    out.push(`| Query (${sz(small)}) | req/s | p50 | p99 | mean | non-2xx | matches |`, '|---|---:|---:|---:|---:|---:|---:|');
    for (const f of small.figures) {
      if (f.total === 0) out.push(`| ${f.label} | **no request completed in ${f.seconds} s** | | | | ${f.non2xx + f.errors + f.timeouts} | |`);
      else out.push(`| ${f.label} | ${fmt(f.requestsPerSec)} | ${f.p50} | ${f.p99} | ${fmt(f.mean, 2)} | ${f.non2xx + f.errors + f.timeouts} | ${fmt(f.avgMatches, 1)} |`);
    }
    out.push('');
    return out;
  }
  const a = sz(small);
  const b = sz(big);
  out.push(
    `| Query | matches (avg) | req/s ${a} | p50 ${a} | p99 ${a} | req/s ${b} | p50 ${b} | p99 ${b} | mean ${a} → ${b} (ms) | non-2xx | p50 ${b}/${a} | mean ${b}/${a} | target |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const f of big.figures) {
    const s = small.figures.find((g) => g.key === f.key)!;
    const g = growth(s, f);
    const bad = f.non2xx + f.errors + f.timeouts + s.non2xx + s.errors + s.timeouts;
    const wrong = s.wrong.length + f.wrong.length;
    let target = '';
    if (e.key === 'sqlite') {
      const p99 = f.slow ? 'no p99 target' : `p99 ${f.p99 < P99_TARGET_MS ? 'PASS' : '**FAIL**'}`;
      target = `${p99}, growth ${g.ok ? 'PASS' : '**FAIL**'} (on ${g.on})`;
    }
    out.push(
      `| ${f.label} | ${fmt(s.avgMatches, 1)} / ${fmt(f.avgMatches, 1)}${wrong ? ` (**${wrong} wrong**)` : ''} | ${fmt(s.requestsPerSec)} | ${s.p50} | ${s.p99} | ${fmt(f.requestsPerSec)} | ${f.p50} | ${f.p99} | ${fmt(s.mean, 2)} → ${fmt(f.mean, 2)} | ${bad ? `**${bad}**` : '0'} | ${x(g.p50)} | ${x(g.mean)} | ${target} |`,
    );
  }
  out.push('');
  const wrongs = e.sizes.flatMap((s) => s.figures.flatMap((f) => f.wrong.map((w) => `${fmt(s.resources)}: ${w}`)));
  if (wrongs.length) out.push('Wrong answers (sampled before timing):', '', ...wrongs.slice(0, 20).map((w) => `- \`${w.slice(0, 300)}\``), '');
  return out;
}

export function renderSection(r: SearchReport, markers: [string, string] = [START, END]): string {
  const s = r.settings;
  const out = [
    markers[0],
    '',
    `_Generated by \`npm run bench:search\` on ${r.date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} (${fmt(r.minutes, 1)} min); do not edit between the markers._`,
    '',
    `Machine: ${r.machine}. Code: ${r.code}. The load generator (autocannon) runs on the same machine and competes with the server for the cores; the machine is shared, so compare the figures of one run with each other (ratios) rather than with another run's.`,
    '',
    `Each figure: ${s.seconds} s of autocannon with ${s.connections} connections after ${s.warmup} s of warm-up, every request with other parameters (a random patient, document, practitioner); servers with \`REQUIRED_PROFILES=none LOG_LEVEL=warn\`. "matches" is the average Bundle.total of the timed responses at each size (given when the first page holds every match; else the matches on the page: the timed requests ask for no total, as clients do by default); before timing, 5 requests per query, with _total=accurate, are compared with the answer the data set gives. Latencies in ms (p50/p99 are whole ms).`,
    '',
  ];
  for (const e of r.engines) out.push(...engineSection(e, r));
  if (r.mongoSkipped) out.push('### MongoDB engine', '', `Skipped: ${r.mongoSkipped}`, '');
  const sqlite = r.engines.find((e) => e.key === 'sqlite');
  if (sqlite) out.push('### Targets (embedded engine)', '', `p99 under ${P99_TARGET_MS} ms at the larger size for every query but \`:contains\`/\`:text\`; growth from the smaller to the larger size at most ${LOG_GROWTH_MAX}× (log(100k)/log(10k) = 1.25 is what a B-tree lookup costs more; judged on the p50 ratio, or on the mean ratio when p50 ≤ 3 ms, too coarse in whole ms).`, '', ...verdicts(sqlite).map((v) => `- ${v}`), '');
  out.push(markers[1]);
  return out.join('\n');
}

export function writeReadme(r: SearchReport): void {
  const markers: [string, string] = r.engines.some((e) => e.key === 'sqlite') ? [START, END] : [MONGO_START, MONGO_END];
  const section = renderSection(r, markers);
  let text = fs.existsSync(README) ? fs.readFileSync(README, 'utf8') : '# Benchmarks\n';
  const a = text.indexOf(markers[0]);
  const b = text.indexOf(markers[1]);
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + markers[1].length);
  else text = `${text.replace(/\s*$/, '\n\n')}## Search (\`npm run bench:search\`)\n\n${section}\n`;
  fs.writeFileSync(README, text);
}

function codeVersion(): string {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execSync('git status --porcelain -- src', { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd();
    return dirty ? `${head} with uncommitted changes in ${dirty.split('\n').map((l) => `\`${l.slice(3)}\``).join(', ')}` : head;
  } catch {
    return 'unknown';
  }
}

export async function runSearchBench(): Promise<{ report: SearchReport; failed: boolean }> {
  if (!fs.existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: run \`npm run build\` first`);
  const started = new Date();
  const cpus = os.cpus();
  const machine = `${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB RAM, ${os.platform()} ${os.release()}, Node ${process.version}, load average ${os.loadavg().map((l) => fmt(l, 1)).join(' ')} at the start`;
  log(`espace-sante-fhir search bench: ${fmt(RESOURCES / 10)} then ${fmt(RESOURCES)} resources, ${SECONDS} s per figure (+${WARMUP} s warm-up), ${CONNECTIONS} connections`);
  log(`machine: ${machine}`);
  const engines: SearchEngineResult[] = [];
  const keep = process.env.BENCH_KEEP_DATA === '1';
  const dataDir = keep ? fs.mkdtempSync(path.join(os.tmpdir(), 'esf-bench-search-kept-')) : tempDir('esf-bench-search-');
  // BENCH_SEARCH_ENGINES=mongodb: the MongoDB engine only (its figures go into their own markers)
  const only = process.env.BENCH_SEARCH_ENGINES;
  if (only !== 'mongodb') engines.push(await runEngine('sqlite', 'Embedded engine (SQLite)', { DATA_DIR: dataDir }, RESOURCES));
  if (keep) log(`  data kept in ${dataDir} (espace-sante.sqlite)`);
  else removeTempDir(dataDir);
  let mongoSkipped: string | undefined;
  if (process.env.MONGODB_URI) engines.push(await runMongo(process.env.MONGODB_URI));
  else {
    mongoSkipped = 'MONGODB_URI is not set. To measure it: `MONGODB_URI=mongodb://127.0.0.1:27017 npm run bench:search` (a fresh database, dropped afterwards).';
    log(`\n== MongoDB engine: SKIPPED. ${mongoSkipped}`);
  }
  const report: SearchReport = {
    date: started,
    machine,
    code: codeVersion(),
    settings: { seconds: SECONDS, warmup: WARMUP, connections: CONNECTIONS, resources: RESOURCES },
    engines,
    mongoSkipped,
    minutes: (Date.now() - started.getTime()) / 60_000,
  };
  writeReadme(report);
  log('');
  for (const e of engines.filter((x) => x.key === 'sqlite')) {
    log(`${e.title} targets:`);
    for (const v of verdicts(e)) log(`  ${v.replace(/\*\*/g, '')}`);
  }
  log('\nsearch results written to bench/README.md');
  return { report, failed: engines.some((e) => e.error) };
}

if (require.main === module) {
  cleanUpOnSignals();
  runSearchBench()
    .then(({ failed }) => {
      if (failed) process.exitCode = 1;
    })
    .catch((e: Error) => {
      process.stderr.write(`search bench failed: ${e.stack ?? e.message}\n`);
      process.exitCode = 1;
    })
    .finally(() => cleanupAll());
}
