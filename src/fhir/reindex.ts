import { randomUUID } from 'node:crypto';
import type { SearchParameter } from 'fhir/r4';
import { FhirError, notFound } from '../outcome';
import { extractIndex } from '../search/extract';
import type { SearchPlan } from '../search/plan';
import type { Services } from './context';

/**
 * `$reindex`: makes the SearchParameter resources stored on this server searchable. A job adds them
 * to the registry (indexed on every write from then on, not yet searchable), rebuilds the index of
 * every resource of their base types in the background, and makes them searchable when done. Its
 * progress is saved after every page, so a stopped server resumes it where it was.
 */

export interface ReindexJob {
  id: string;
  status: 'running' | 'completed' | 'cancelled' | 'failed';
  startedAt: string;
  finishedAt?: string;
  /** SearchParameter urls the job makes searchable */
  params: string[];
  rejected: { url: string; reason: string }[];
  types: string[];
  /** where the job is: types[typeIndex], after cursor */
  typeIndex: number;
  cursor?: string;
  processed: number;
  total: number;
}

interface ReindexState {
  jobs: ReindexJob[];
  /** urls of the stored SearchParameters that a completed job made searchable */
  active: string[];
}

const STATE = 'reindex';
const PAGE = 200;
const KEEP_JOBS = 20;

export class Reindexer {
  private running?: Promise<void>;
  private stopRequested = false;

  constructor(private readonly svc: Services) {}

  private async state(): Promise<ReindexState> {
    return (await this.svc.store.getState<ReindexState>(STATE)) ?? { jobs: [], active: [] };
  }

  private async save(job: ReindexJob, active?: string[]): Promise<void> {
    const state = await this.state();
    const jobs = [job, ...state.jobs.filter((j) => j.id !== job.id)].slice(0, KEEP_JOBS);
    await this.svc.store.setState(STATE, { jobs, active: active ?? state.active });
  }

  /** Every stored SearchParameter, all pages. */
  private async storedParameters(): Promise<SearchParameter[]> {
    const out: SearchParameter[] = [];
    let cursor: SearchPlan['cursor'];
    for (;;) {
      const page = await this.svc.store.search({ scopes: [{ type: 'SearchParameter', conditions: [] }], sort: [], count: PAGE, cursor, total: 'none' });
      out.push(...page.items.map((v) => JSON.parse(v.json!) as SearchParameter));
      if (!page.next) return out;
      cursor = { direction: 'next', position: page.next };
    }
  }

  /** At start-up: parameters made searchable before are searchable again; an interrupted job goes on. */
  async resume(): Promise<void> {
    const state = await this.state();
    const stored = await this.storedParameters();
    const byUrl = new Map(stored.filter((sp) => sp.url && sp.status !== 'retired').map((sp) => [sp.url!, sp]));
    this.svc.registry.add(state.active.map((u) => byUrl.get(u)).filter((sp): sp is SearchParameter => !!sp), true);
    const job = state.jobs.find((j) => j.status === 'running');
    if (job) {
      this.svc.registry.add(job.params.map((u) => byUrl.get(u)).filter((sp): sp is SearchParameter => !!sp), false);
      this.launch(job);
    }
  }

  async start(): Promise<ReindexJob> {
    if (this.running) throw new FhirError(409, 'conflict', 'A $reindex job is already running; wait for it or cancel it');
    const state = await this.state();
    const rejected: ReindexJob['rejected'] = [];
    const accepted: SearchParameter[] = [];
    for (const sp of await this.storedParameters()) {
      if (sp.status === 'retired' || (sp.url && state.active.includes(sp.url))) continue;
      const problem = this.svc.registry.problem(sp);
      if (problem) rejected.push({ url: sp.url ?? `SearchParameter/${sp.id}`, reason: problem });
      else accepted.push(sp);
    }
    const bases = new Set(accepted.flatMap((sp) => sp.base as string[]));
    const types = bases.has('Resource') || bases.has('DomainResource') ? [...this.svc.resourceTypes] : [...bases].sort();
    let total = 0;
    for (const type of types) total += (await this.svc.store.search({ scopes: [{ type, conditions: [] }], sort: [], count: 0, total: 'accurate' })).total ?? 0;
    this.svc.registry.add(accepted, false);
    const job: ReindexJob = { id: randomUUID(), status: 'running', startedAt: new Date().toISOString(), params: accepted.map((sp) => sp.url!), rejected, types, typeIndex: 0, processed: 0, total };
    await this.save(job);
    this.launch(job);
    return job;
  }

  private launch(job: ReindexJob): void {
    this.stopRequested = false;
    this.running = this.run(job).finally(() => (this.running = undefined));
  }

  private async run(job: ReindexJob): Promise<void> {
    try {
      while (job.typeIndex < job.types.length) {
        // one page at a time, letting requests in between (the SQLite engine would otherwise hold the event loop)
        await new Promise((r) => setImmediate(r));
        if (this.stopRequested) return; // interrupted: the saved progress is where a restart resumes
        const latest = (await this.state()).jobs.find((j) => j.id === job.id);
        if (latest?.status === 'cancelled') return;
        const type = job.types[job.typeIndex];
        const cursor: SearchPlan['cursor'] = job.cursor ? { direction: 'next', position: job.cursor } : undefined;
        const page = await this.svc.store.search({ scopes: [{ type, conditions: [] }], sort: [], count: PAGE, cursor, total: 'none' });
        for (const v of page.items) {
          const resource = JSON.parse(v.json!) as { resourceType: string };
          await this.svc.store.reindex(type, v.id, v.versionId, extractIndex(this.svc.registry, resource, this.svc.config.baseUrl));
          job.processed++;
        }
        if (page.next) job.cursor = page.next;
        else {
          job.typeIndex++;
          job.cursor = undefined;
        }
        await this.save(job);
      }
      this.svc.registry.activate(job.params);
      job.status = 'completed';
      job.finishedAt = new Date().toISOString();
      const state = await this.state();
      await this.save(job, [...new Set([...state.active, ...job.params])]);
    } catch {
      job.status = 'failed';
      job.finishedAt = new Date().toISOString();
      await this.save(job).catch(() => undefined);
    }
  }

  async status(id: string): Promise<ReindexJob> {
    const job = (await this.state()).jobs.find((j) => j.id === id);
    if (!job) throw notFound(`No $reindex job ${id}`);
    return job;
  }

  async cancel(id: string): Promise<ReindexJob> {
    const job = await this.status(id);
    if (job.status !== 'running') throw new FhirError(409, 'conflict', `The $reindex job ${id} is ${job.status}; only a running job can be cancelled`);
    job.status = 'cancelled';
    job.finishedAt = new Date().toISOString();
    await this.save(job);
    await this.running;
    return job;
  }

  /** Lets the current page finish, then stops; the job resumes at the next start. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    await this.running;
  }

  /** For tests and the operation's caller: resolves when no job is running. */
  async idle(): Promise<void> {
    await this.running;
  }
}
