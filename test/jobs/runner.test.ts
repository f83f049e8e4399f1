import { JobRunner, type JobKind, type JobRecord } from '../../src/jobs/runner';
import type { ResourceStore } from '../../src/store/types';
import { engines } from '../helpers/engines';

/** The one runner of background work: steps with saved progress, resumed after a stop, run once among servers sharing a store. */
interface Count {
  at: number;
  to: number;
}

/** A job that counts to `to`, one step at a time, recording which runner made each step. */
function counting(name: string, steps: string[], gate?: () => Promise<void>): JobKind<Count> {
  return {
    kind: 'count',
    async step(job: JobRecord<Count>) {
      await gate?.();
      steps.push(`${name}:${job.state.at}`);
      job.state.at++;
      job.processed++;
      return job.state.at >= job.state.to;
    },
  };
}

describe.each(engines())('job runner [$name]', (engine) => {
  let store: ResourceStore;
  beforeAll(async () => {
    store = engine.create();
    await store.init();
  });
  afterAll(async () => {
    await store.close();
    await engine.cleanup();
  });

  test('a job runs in steps to its end, its progress saved; a stopped runner’s job is resumed by the next one where it was', async () => {
    const steps: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = new JobRunner(store);
    first.register(counting('first', steps, () => (steps.length >= 3 ? held : Promise.resolve())));
    const job = await first.submit<Count>('count', { at: 0, to: 10 }, 10);
    while (steps.length < 3) await new Promise((r) => setTimeout(r, 5));
    const stopping = first.stop();
    release();
    await stopping;
    const saved = (await first.get<Count>(job.id))!;
    expect(saved.status).toBe('running');
    expect(saved.state.at).toBeGreaterThanOrEqual(3);
    expect(saved.state.at).toBeLessThan(10);

    const second = new JobRunner(store);
    second.register(counting('second', steps));
    await second.resume();
    await second.idle();
    const done = (await second.get<Count>(job.id))!;
    expect(done).toMatchObject({ status: 'completed', processed: 10, state: { at: 10 } });
    // every step made once, the first ones by the first runner, the rest by the second
    expect(steps.map((s) => Number(s.split(':')[1]))).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(steps.slice(saved.state.at).every((s) => s.startsWith('second:'))).toBe(true);
  });

  test('two servers sharing the store: a job that one runs is not run by the other while its lease holds; a lapsed one is taken over', async () => {
    const steps: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const a = new JobRunner(store, undefined, { leaseMs: 300 });
    a.register(counting('a', steps, () => held));
    const job = await a.submit<Count>('count', { at: 0, to: 3 });
    const b = new JobRunner(store, undefined, { leaseMs: 300 });
    b.register(counting('b', steps));
    await b.resume(); // a holds the lease
    await b.idle();
    expect(steps).toEqual([]);
    // a's server dies in the middle of a step (its lease is not renewed nor released): once lapsed, b takes the job over
    await new Promise((r) => setTimeout(r, 400));
    await b.resume();
    await b.idle();
    expect((await b.get<Count>(job.id))!.status).toBe('completed');
    expect(steps).toEqual(['b:0', 'b:1', 'b:2']);
    release();
    await a.idle();
  });

  test('a cancelled job stops after the step under way and stays cancelled', async () => {
    const steps: string[] = [];
    const runner = new JobRunner(store);
    runner.register(counting('c', steps, () => new Promise((r) => setTimeout(r, 20))));
    const job = await runner.submit<Count>('count', { at: 0, to: 1000 });
    while (steps.length < 2) await new Promise((r) => setTimeout(r, 5));
    const cancelled = await runner.cancel<Count>(job.id);
    expect(cancelled!.status).toBe('cancelled');
    await runner.idle();
    const n = steps.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(steps.length).toBe(n);
    expect((await runner.get<Count>(job.id))!.status).toBe('cancelled');
    await runner.stop();
  });

  test('a periodic task runs once a period among the servers that share the store', async () => {
    const runs: string[] = [];
    const a = new JobRunner(store);
    const b = new JobRunner(store);
    a.every('tick-test', 400, async () => void runs.push('a'));
    b.every('tick-test', 400, async () => void runs.push('b'));
    await new Promise((r) => setTimeout(r, 1000));
    await a.stop();
    await b.stop();
    // three periods started within the second (at 0, 400 and 800 ms): one run each, by either server
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.length).toBeLessThanOrEqual(3);
  });
});
