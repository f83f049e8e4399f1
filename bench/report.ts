/** The generated section of bench/README.md (between the bench markers). */
import fs from 'node:fs';
import type { Figure } from './measure';
import type { ProfileSummary } from './profile';

/** One engine's figures, as the HTTP benchmark measured them. */
export interface EngineResult {
  key: 'sqlite' | 'mongodb';
  title: string;
  note?: string;
  load?: { patients: number; seconds: number; via: 'transaction' | 'batch' };
  figures: Figure[];
  error?: string;
  serverExit?: number | null;
}

export const START = '<!-- bench:start -->';
export const END = '<!-- bench:end -->';

export interface Report {
  date: Date;
  machine: { cores: number; cpu: string; memGiB: number; os: string; node: string };
  settings: { seconds: number; warmup: number; connections: number; patients: number; bundleSize: number; profileSeconds: number; profilePatients: number };
  ceiling?: Figure;
  engines: EngineResult[];
  mongoSkipped?: string;
  profile: { summary?: ProfileSummary; figures: Figure[]; error?: string };
}

/** Targets of the embedded engine: reads at least 40 % of the ceiling, creates at least 1,000/s. */
export const TARGETS = { readShareOfCeiling: 0.4, createsPerSec: 1000 };

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pct = (x: number) => `${fmt(100 * x, 1)} %`;

function targetOf(engine: EngineResult, f: Figure, ceiling?: Figure): string {
  if (engine.key !== 'sqlite') return '';
  if (f.label.startsWith('read')) {
    if (!ceiling) return 'n/a (no ceiling)';
    const share = f.requestsPerSec / ceiling.requestsPerSec;
    return `${share >= TARGETS.readShareOfCeiling ? 'PASS' : 'FAIL'} (≥ 40 % of ceiling)`;
  }
  if (f.label.startsWith('create')) return `${f.requestsPerSec >= TARGETS.createsPerSec ? 'PASS' : 'FAIL'} (≥ ${fmt(TARGETS.createsPerSec)}/s)`;
  return '';
}

function engineSection(e: EngineResult, r: Report): string[] {
  const out = [`### ${e.title}`, ''];
  if (e.note) out.push(`_${e.note}_`, '');
  if (e.load) out.push(`Loaded ${fmt(e.load.patients)} patients in ${fmt(e.load.seconds, 1)} s (${fmt(e.load.patients / e.load.seconds)} patients/s) with ${e.load.via} Bundles of ${r.settings.bundleSize}.`, '');
  if (e.error) out.push(`**Failed:** \`${e.error.split('\n')[0]}\``, '');
  if (e.figures.length) {
    out.push('| Operation | req/s | p50 (ms) | p99 (ms) | non-2xx | vs ceiling | target |', '|---|---:|---:|---:|---:|---:|---|');
    for (const f of e.figures) {
      const bad = f.non2xx + f.errors + f.timeouts;
      const non2xx = bad ? `**${f.non2xx}** (errors ${f.errors}, timeouts ${f.timeouts}${Object.keys(f.otherStatuses).length ? `, ${Object.entries(f.otherStatuses).map(([c, n]) => `${c}×${n}`).join(' ')}` : ''})` : '0';
      const ratio = r.ceiling ? pct(f.requestsPerSec / r.ceiling.requestsPerSec) : 'n/a';
      if (f.total === 0) {
        out.push(`| ${f.label} | **no request completed in ${f.seconds} s** | | | ${non2xx} | | ${targetOf(e, f, r.ceiling)} |`);
        continue;
      }
      out.push(`| ${f.label} | ${fmt(f.requestsPerSec)} | ${f.p50} | ${f.p99} | ${non2xx} | ${ratio} | ${targetOf(e, f, r.ceiling)} |`);
    }
    out.push('');
  }
  return out;
}

function profileSection(r: Report): string[] {
  const p = r.profile;
  const out = [`### Hot path: SQLite server under \`node --cpu-prof\``, ''];
  const half = Math.max(1, Math.floor(r.settings.connections / 2));
  out.push(`${fmt(r.settings.profilePatients)} patients loaded, then ${r.settings.profileSeconds} s of reads by id and creates at the same time (${half} + ${half} connections). Figures under the profiler: ${p.figures.map((f) => `${f.label} ${fmt(f.requestsPerSec)} req/s (p99 ${f.p99} ms, non-2xx ${f.non2xx})`).join('; ') || 'none'}.`, '');
  if (p.error) out.push(`**Failed:** \`${p.error.split('\n')[0]}\``, '');
  const s = p.summary;
  if (!s) return out;
  out.push(`Self time ${s.windowed ? 'within the load window' : 'over the whole run'}: ${fmt(s.busyMs)} ms busy, ${fmt(s.idleMs)} ms idle. Percentages are shares of the busy time of the server's main thread.`, '');
  out.push('| # | function | where | self (ms) | share |', '|---:|---|---|---:|---:|');
  s.functions.forEach((f, i) => out.push(`| ${i + 1} | \`${f.name}\` | ${f.where ? `\`${f.where}\`` : ''} | ${fmt(f.selfMs)} | ${pct(f.percent / 100)} |`));
  out.push('', 'By module (self time):', '', '| module | self (ms) | share |', '|---|---:|---:|');
  for (const m of s.modules) out.push(`| \`${m.name}\` | ${fmt(m.selfMs)} | ${pct(m.percent / 100)} |`);
  out.push('');
  return out;
}

export function targetLines(r: Report): string[] {
  const sqlite = r.engines.find((e) => e.key === 'sqlite');
  const read = sqlite?.figures.find((f) => f.label.startsWith('read'));
  const create = sqlite?.figures.find((f) => f.label.startsWith('create'));
  const lines = ['Targets (embedded engine):'];
  if (read && r.ceiling) {
    const share = read.requestsPerSec / r.ceiling.requestsPerSec;
    lines.push(`- reads by id ≥ 40 % of the ceiling: ${share >= TARGETS.readShareOfCeiling ? 'PASS' : 'FAIL'} (${fmt(read.requestsPerSec)} / ${fmt(r.ceiling.requestsPerSec)} req/s = ${pct(share)})`);
  } else lines.push('- reads by id ≥ 40 % of the ceiling: not measured');
  if (create) lines.push(`- creates ≥ 1,000/s: ${create.requestsPerSec >= TARGETS.createsPerSec ? 'PASS' : 'FAIL'} (${fmt(create.requestsPerSec)} req/s)`);
  else lines.push('- creates ≥ 1,000/s: not measured');
  const bad = r.engines.flatMap((e) => e.figures.filter((f) => f.non2xx + f.errors + f.timeouts > 0).map((f) => `${e.key} ${f.label}`));
  lines.push(bad.length ? `- non-2xx responses or errors: **${bad.join(', ')}**` : '- non-2xx responses: 0 in every measured figure');
  return lines;
}

export function renderSection(r: Report): string {
  const s = r.settings;
  const m = r.machine;
  const out: string[] = [
    START,
    '',
    `_Generated by \`npm run bench\` on ${r.date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}; do not edit between the markers._`,
    '',
    `Machine: ${m.cores} cores (${m.cpu}), ${fmt(m.memGiB, 1)} GiB RAM, ${m.os}, Node ${m.node}. The load generator (autocannon) runs on the same machine and competes with the server for the cores.`,
    '',
    `Load: ${fmt(s.patients)} FR Core Patients loaded first (unless an engine says otherwise); each figure is ${s.seconds} s of autocannon with ${s.connections} connections after ${s.warmup} s of warm-up; servers run with \`LOG_LEVEL=warn\`.`,
    '',
    '### Ceiling: bare Express 5, the same Patient JSON from memory',
    '',
  ];
  if (r.ceiling) {
    const c = r.ceiling;
    out.push('| Operation | req/s | p50 (ms) | p99 (ms) | non-2xx |', '|---|---:|---:|---:|---:|', `| GET /fhir/Patient/:id | ${fmt(c.requestsPerSec)} | ${c.p50} | ${c.p99} | ${c.non2xx} |`, '');
  } else out.push('**Not measured** (the ceiling app failed).', '');
  for (const e of r.engines) out.push(...engineSection(e, r));
  if (r.mongoSkipped) out.push('### MongoDB engine', '', `Skipped: ${r.mongoSkipped}`, '');
  out.push('### Targets', '', ...targetLines(r).slice(1), '');
  out.push(...profileSection(r));
  out.push(END);
  return out.join('\n');
}

const HEADER = `# Benchmarks

\`npm run bench\` builds the project, then measures the FHIR server over HTTP with
[autocannon](https://github.com/mcollina/autocannon): it starts the real server
(\`dist/src/main.js\`) as a child process on each store engine, loads 10,000 FR Core Patients
(generated in \`bench/patients.ts\`) with transaction Bundles, and times creates (POST), reads by id
(GET), updates (PUT) and searches by INS identifier. A bare Express 5 app returning the same
Patient JSON from memory (\`bench/ceiling.ts\`) gives the ceiling the figures are compared with.
Finally the SQLite server runs once more under \`node --cpu-prof\` and the hottest functions are
listed. Everything runs in temporary directories and databases that are removed afterwards.

## How to run

\`\`\`sh
npm run bench                                   # embedded engine (SQLite) only
MONGODB_URI=mongodb://127.0.0.1:27017 npm run bench   # also the MongoDB engine (fresh database, dropped after)
BENCH_SECONDS=5 BENCH_CONNECTIONS=10 npm run bench     # shorter figures
\`\`\`

Other settings: \`BENCH_PATIENTS\` (10000), \`BENCH_WARMUP_SECONDS\` (1),
\`BENCH_PROFILE_SECONDS\` (min(5, BENCH_SECONDS)), \`BENCH_MONGO_PATIENTS\` (BENCH_PATIENTS, but 500
when the server is FerretDB, whose v1 scans a collection on every find that is not by \`_id\`, so
its costs grow with the collection). Figures measured on FerretDB are labelled as such: they say
little about a real MongoDB. Targets for the embedded engine: reads by id at
least 40 % of the ceiling, creates at least 1,000/s; a missed target is reported as FAIL but never
makes the command fail. The command exits non-zero only when an engine could not be measured.

## Latest results

`;

/** Replaces the generated section of the README (creating the file or the markers if needed). */
export function writeReadme(file: string, r: Report): { targets: string[] } {
  const section = renderSection(r);
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : HEADER;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + END.length);
  else text = `${text.replace(/\s*$/, '\n\n')}${section}\n`;
  fs.writeFileSync(file, text);
  return { targets: targetLines(r) };
}
