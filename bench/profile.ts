/** Summary of a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per module. */
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  selfMs: number;
  /** share of the busy (non-idle) time */
  percent: number;
}
export interface ProfileSummary {
  file: string;
  /** time covered by the summary (the load window when it could be matched), ms */
  windowMs: number;
  busyMs: number;
  idleMs: number;
  /** whether samples were restricted to the load window */
  windowed: boolean;
  functions: ProfileRow[];
  modules: ProfileRow[];
}

/** "file:///repo/node_modules/express/lib/x.js" -> "express/lib/x.js"; "file:///repo/dist/src/a.js" -> "dist/src/a.js". */
function shortUrl(url: string, root: string): string {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + '/node_modules/'.length);
  if (u.startsWith(root + path.sep)) u = u.slice(root.length + 1);
  return u;
}

/** The module a file belongs to: a package name, a node: built-in, or our file. */
function moduleOf(where: string): string {
  if (!where) return '(native / V8)';
  if (where.startsWith('node:')) return where.replace(/^node:(internal\/)?([^/]+).*$/, 'node:$1$2');
  if (where.startsWith('dist/')) return where.replace(/:\d+$/, '');
  const parts = where.split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/**
 * Aggregates self time (sample time deltas) per function and per module. When `window` (µs on the
 * monotonic clock, as process.hrtime gives) overlaps the profile, only samples inside it count, so
 * start-up and shut-down do not blur the hot path.
 */
export function summarizeProfile(file: string, root: string, window?: { startUs: number; endUs: number }, top = 10): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let windowed = !!window && window.startUs < profile.endTime && window.endUs > profile.startTime;
  const self = new Map<number, number>();
  const tally = (restrict: boolean) => {
    self.clear();
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i] ?? 0;
      // A sample's delta is the time since the previous sample, spent in the sampled frame.
      if (restrict && (t < window!.startUs || t > window!.endUs)) continue;
      self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
  };
  tally(windowed);
  if (windowed && self.size === 0) {
    windowed = false;
    tally(false);
  }

  const fns = new Map<string, ProfileRow>();
  const mods = new Map<string, ProfileRow>();
  let busyUs = 0;
  let idleUs = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    const name = cf.functionName || '(anonymous)';
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const file = shortUrl(cf.url, root);
    const where = file ? `${file}:${cf.lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const f = fns.get(key) ?? { name, where, selfMs: 0, percent: 0 };
    f.selfMs += us / 1000;
    fns.set(key, f);
    const mod = name.startsWith('(') && !file ? name : moduleOf(file);
    const m = mods.get(mod) ?? { name: mod, where: '', selfMs: 0, percent: 0 };
    m.selfMs += us / 1000;
    mods.set(mod, m);
  }
  const finish = (rows: Map<string, ProfileRow>) =>
    [...rows.values()]
      .map((r) => ({ ...r, percent: busyUs ? (100 * r.selfMs * 1000) / busyUs : 0 }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top);
  return {
    file,
    windowMs: (busyUs + idleUs) / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    windowed,
    functions: finish(fns),
    modules: finish(mods),
  };
}
