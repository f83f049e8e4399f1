import type { SearchParameter } from 'fhir/r4';
import { extractIndex } from '../search/extract';
import type { SearchPlan } from '../search/plan';
import type { SearchParamRegistry } from '../search/registry';
import type { ResourceStore } from '../store/types';
import type { JobKind, JobRecord, JobRunner } from './runner';

/**
 * `$reindex`: makes the SearchParameter resources stored on this server searchable. The job adds
 * them to the registry (indexed on every write from then on, not yet searchable), rebuilds the index
 * of every resource of their base types a page at a time, and makes them searchable when done.
 */

export interface ReindexState {
  /** SearchParameter urls the job makes searchable */
  params: string[];
  rejected: { url: string; reason: string }[];
  types: string[];
  /** where the job is: types[typeIndex], after cursor */
  typeIndex: number;
  cursor?: string;
}

export type ReindexJob = JobRecord<ReindexState>;

export interface ReindexServices {
  store: ResourceStore;
  registry: SearchParamRegistry;
  resourceTypes: ReadonlySet<string>;
  baseUrl?: string;
}

const KIND = 'reindex';
/** urls of the stored SearchParameters that a completed job made searchable */
const ACTIVE = 'reindex:active';
/** where versions before the job runner kept their jobs and the active list */
const EARLIER = 'reindex';
const PAGE = 200;

export class Reindexer {
  constructor(
    private readonly svc: ReindexServices,
    private readonly jobs: JobRunner,
  ) {
    jobs.register<ReindexState>(this.kind());
  }

  private kind(): JobKind<ReindexState> {
    return {
      kind: KIND,
      step: (job) => this.step(job),
      completed: async (job) => {
        this.svc.registry.activate(job.state.params);
        await this.svc.store.setState(ACTIVE, [...new Set([...(await this.active()), ...job.state.params])]);
      },
      resumed: async (job) => {
        const byUrl = await this.storedByUrl();
        this.svc.registry.add(job.state.params.map((u) => byUrl.get(u)).filter((sp): sp is SearchParameter => !!sp), false);
      },
    };
  }

  private async active(): Promise<string[]> {
    const active = await this.svc.store.getState<string[]>(ACTIVE);
    if (active) return active;
    // a store written before the job runner
    return (await this.svc.store.getState<{ active?: string[] }>(EARLIER))?.active ?? [];
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

  private async storedByUrl(): Promise<Map<string, SearchParameter>> {
    return new Map((await this.storedParameters()).filter((sp) => sp.url && sp.status !== 'retired').map((sp) => [sp.url!, sp]));
  }

  /** At start-up: the parameters made searchable before are searchable again (a job left running goes on with the runner's resume). */
  async restore(): Promise<void> {
    const byUrl = await this.storedByUrl();
    this.svc.registry.add((await this.active()).map((u) => byUrl.get(u)).filter((sp): sp is SearchParameter => !!sp), true);
  }

  /** A new job for the stored SearchParameters not searchable yet; those that cannot be used are listed as rejected. */
  async start(): Promise<ReindexJob> {
    if ((await this.jobs.list(KIND)).some((j) => j.status === 'running')) throw new ReindexRunning();
    const active = await this.active();
    const rejected: ReindexState['rejected'] = [];
    const accepted: SearchParameter[] = [];
    for (const sp of await this.storedParameters()) {
      if (sp.status === 'retired' || (sp.url && active.includes(sp.url))) continue;
      const problem = this.svc.registry.problem(sp);
      if (problem) rejected.push({ url: sp.url ?? `SearchParameter/${sp.id}`, reason: problem });
      else accepted.push(sp);
    }
    const bases = new Set(accepted.flatMap((sp) => sp.base as string[]));
    const types = bases.has('Resource') || bases.has('DomainResource') ? [...this.svc.resourceTypes] : [...bases].sort();
    let total = 0;
    for (const type of types) total += (await this.svc.store.search({ scopes: [{ type, conditions: [] }], sort: [], count: 0, total: 'accurate' })).total ?? 0;
    this.svc.registry.add(accepted, false);
    return this.jobs.submit<ReindexState>(KIND, { params: accepted.map((sp) => sp.url!), rejected, types, typeIndex: 0 }, total);
  }

  async status(id: string): Promise<ReindexJob | undefined> {
    const job = await this.jobs.get<ReindexState>(id);
    return job?.kind === KIND ? job : undefined;
  }

  async cancel(id: string): Promise<ReindexJob | undefined> {
    return (await this.status(id)) && this.jobs.cancel<ReindexState>(id);
  }

  /** One page of one type: its resources indexed again with every parameter. */
  private async step(job: ReindexJob): Promise<boolean> {
    const s = job.state;
    if (s.typeIndex >= s.types.length) return true;
    const type = s.types[s.typeIndex];
    const cursor: SearchPlan['cursor'] = s.cursor ? { direction: 'next', position: s.cursor } : undefined;
    const page = await this.svc.store.search({ scopes: [{ type, conditions: [] }], sort: [], count: PAGE, cursor, total: 'none' });
    for (const v of page.items) {
      const resource = JSON.parse(v.json!) as { resourceType: string };
      await this.svc.store.reindex(type, v.id, v.versionId, extractIndex(this.svc.registry, resource, this.svc.baseUrl));
      job.processed++;
    }
    if (page.next) s.cursor = page.next;
    else {
      s.typeIndex++;
      s.cursor = undefined;
    }
    return s.typeIndex >= s.types.length;
  }
}

/** Another $reindex job is running. */
export class ReindexRunning extends Error {}
