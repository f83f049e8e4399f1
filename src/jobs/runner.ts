import { randomUUID } from 'node:crypto';
import type { Logger } from '../log';
import type { ResourceStore } from '../store/types';

/**
 * The one runner of background work. A job is a record in the server state, done in bounded steps:
 * after each step its progress is saved, so a stopped server resumes it where it was; a job holds a
 * lease while it runs, so that of several servers sharing one store only one runs it (another takes
 * it over once the lease has lapsed: its server stopped). Periodic tasks (purges) run once per
 * period across the servers the same way.
 */

export type JobStatus = 'running' | 'completed' | 'cancelled' | 'failed';

export interface JobRecord<S = unknown> {
  id: string;
  kind: string;
  status: JobStatus;
  startedAt: string;
  finishedAt?: string;
  /** units of work done, and to do when known */
  processed: number;
  total?: number;
  /** the kind's own progress: where the next step starts */
  state: S;
  /** why it failed (never data) */
  error?: string;
}

export interface JobKind<S = unknown> {
  kind: string;
  /** One bounded step (a page of work): updates `job.state` and `job.processed`; true when the job is done. */
  step(job: JobRecord<S>): Promise<boolean>;
  /** After the last step. */
  completed?(job: JobRecord<S>): Promise<void>;
  /** Before the steps of a job found running at start go on (what lives in memory only must be set up again). */
  resumed?(job: JobRecord<S>): Promise<void>;
}

const RECORD = (id: string) => `job:${id}`;
const LEASE = (id: string) => `job-lease:${id}`;
const CANCEL = (id: string) => `job-cancel:${id}`;
/** A lease lapses this long after its last renewal: a step must take less. */
const LEASE_MS = 60_000;
/** Finished jobs are kept this long for their status to be read. */
const KEEP_MS = 7 * 24 * 3600_000;

export class JobRunner {
  private readonly kinds = new Map<string, JobKind<never>>();
  private readonly loops = new Map<string, Promise<void>>();
  private readonly owner = randomUUID();
  private readonly timers: NodeJS.Timeout[] = [];
  private stopping = false;

  private readonly leaseMs: number;

  constructor(
    private readonly store: ResourceStore,
    private readonly log?: Logger,
    options: { leaseMs?: number } = {},
  ) {
    this.leaseMs = options.leaseMs ?? LEASE_MS;
  }

  register<S>(kind: JobKind<S>): void {
    this.kinds.set(kind.kind, kind as JobKind<never>);
  }

  /** Records a new job and starts running it. */
  async submit<S>(kind: string, state: S, total?: number): Promise<JobRecord<S>> {
    if (!this.kinds.has(kind)) throw new Error(`No job kind ${kind}`);
    const job: JobRecord<S> = { id: randomUUID(), kind, status: 'running', startedAt: new Date().toISOString(), processed: 0, total, state };
    await this.save(job);
    await this.launch(job);
    return job;
  }

  async get<S = unknown>(id: string): Promise<JobRecord<S> | undefined> {
    return this.store.getState<JobRecord<S>>(RECORD(id));
  }

  async list<S = unknown>(kind?: string): Promise<JobRecord<S>[]> {
    const all = (await this.store.listState<JobRecord<S>>('job:')).map((e) => e.value);
    return all.filter((j) => !kind || j.kind === kind).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  /**
   * Cancels a running job: its loop (in this server or another) stops after the step under way and
   * records it cancelled; a job no server runs now is recorded cancelled at once.
   */
  async cancel<S = unknown>(id: string): Promise<JobRecord<S> | undefined> {
    const job = await this.get<S>(id);
    if (!job || job.status !== 'running') return job;
    await this.store.setState(CANCEL(id), true, { expiresAt: Date.now() + KEEP_MS });
    if (await this.takeLease(id)) {
      // nobody runs it: it ends here
      await this.store.releaseState(LEASE(id), this.owner);
      await this.finish(job, 'cancelled');
    }
    await this.loops.get(id);
    return { ...job, status: 'cancelled', finishedAt: (await this.get<S>(id))?.finishedAt ?? new Date().toISOString() };
  }

  /** At start: the jobs left running whose lease has lapsed (their server stopped) go on here. */
  async resume(): Promise<void> {
    for (const job of await this.list()) {
      if (job.status !== 'running' || this.loops.has(job.id)) continue;
      if (!this.kinds.has(job.kind)) continue;
      if (!(await this.takeLease(job.id))) continue;
      await this.kinds.get(job.kind)!.resumed?.(job as JobRecord<never>);
      this.loop(job);
    }
  }

  /** Runs `task` every `everyMs` on one of the servers sharing the store (each period's lease decides which). */
  every(name: string, everyMs: number, task: () => Promise<unknown>): void {
    const tick = async () => {
      if (this.stopping) return;
      // a lease per period: whoever takes it first runs the task this period
      if (!(await this.store.claimState(`job-tick:${name}`, this.owner, { expiresAt: Date.now() + everyMs - 50 }))) return;
      try {
        await task();
      } catch (e) {
        this.log?.warn({ task: name, err: (e as Error)?.message }, 'periodic task failed');
      }
    };
    void tick();
    this.timers.push(setInterval(() => void tick(), everyMs).unref());
  }

  /** Stops the loops after their step under way (their jobs stay running, to resume at the next start) and the periodic tasks. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers.splice(0)) clearInterval(t);
    await this.idle();
    for (const id of [...this.loops.keys()]) await this.store.releaseState(LEASE(id), this.owner);
  }

  /** Resolves when no job runs in this process. */
  async idle(): Promise<void> {
    while (this.loops.size > 0) await Promise.all([...this.loops.values()]);
  }

  private async save(job: JobRecord<unknown>): Promise<void> {
    await this.store.setState(RECORD(job.id), job, job.status === 'running' ? {} : { expiresAt: Date.now() + KEEP_MS });
  }

  private async takeLease(id: string): Promise<boolean> {
    return this.store.claimState(LEASE(id), this.owner, { expiresAt: Date.now() + this.leaseMs });
  }

  private async launch(job: JobRecord<unknown>): Promise<void> {
    if (!(await this.takeLease(job.id))) return;
    this.loop(job);
  }

  private loop(job: JobRecord<unknown>): void {
    const run = this.run(job).finally(() => this.loops.delete(job.id));
    this.loops.set(job.id, run);
  }

  private async run(job: JobRecord<unknown>): Promise<void> {
    const kind = this.kinds.get(job.kind)!;
    const cancelled = async () => (await this.store.getState<boolean>(CANCEL(job.id))) === true;
    let status: JobStatus;
    try {
      for (;;) {
        // one step at a time, letting requests in between (the SQLite engine holds the event loop while it works)
        await new Promise((r) => setImmediate(r));
        if (this.stopping) return; // stopped: the saved progress is where the next start resumes
        if (await cancelled()) {
          status = 'cancelled';
          break;
        }
        await this.store.setState(LEASE(job.id), this.owner, { expiresAt: Date.now() + this.leaseMs });
        if (await kind.step(job as JobRecord<never>)) {
          await kind.completed?.(job as JobRecord<never>);
          status = 'completed';
          break;
        }
        await this.save(job);
      }
    } catch (e) {
      status = 'failed';
      job.error = (e as Error)?.message?.split('\n')[0];
      this.log?.warn({ job: job.id, kind: job.kind, err: job.error }, 'job failed');
    } finally {
      await this.store.releaseState(LEASE(job.id), this.owner).catch(() => undefined);
    }
    await this.finish(job, status).catch((e: unknown) => this.log?.warn({ job: job.id, err: (e as Error)?.message }, 'job end not saved'));
  }

  private async finish(job: JobRecord<unknown>, status: JobStatus): Promise<void> {
    job.status = status;
    job.finishedAt = new Date().toISOString();
    await this.save(job);
  }
}
