import { performance } from 'node:perf_hooks';
import type { Config } from '../../src/config';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { useToken } from '../helpers/auth';
import { eachEngine, FHIR_JSON, patient, request } from '../helpers/http';

/** What one request may cost: entries per Bundle, resource size, array lengths, time; and that no request holds the others. */
const bundle = (type: 'batch' | 'transaction', entries: unknown[]) => JSON.stringify({ resourceType: 'Bundle', type, entry: entries });
const search = (url: string) => ({ request: { method: 'GET', url } });

eachEngine('limits of one request', (h) => {
  /** The same server with other settings, and the suite's token. */
  const appWith = async (config: Partial<Config>) => {
    const app = createApp({ ...h.services, config: { ...h.services.config, ...config } }, createLogger('silent'));
    useToken(app, h.token);
    return app;
  };
  beforeAll(async () => {
    // 400 patients, created in batches of 200
    for (let b = 0; b < 2; b++) {
      const entries = Array.from({ length: 200 }, (_, i) => ({ request: { method: 'POST', url: 'Patient' }, resource: patient(`Limite${b * 200 + i}`, { birthDate: `19${String(10 + ((b * 200 + i) % 90)).padStart(2, '0')}-01-01` }) }));
      const res = await request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle('batch', entries));
      expect(res.status).toBe(200);
      expect(res.body.entry.every((e: { response: { status: string } }) => e.response.status.startsWith('201'))).toBe(true);
    }
  });

  test('a Bundle of more than MAX_BUNDLE_ENTRIES (1000) entries is refused with 413, a batch or a transaction', async () => {
    for (const type of ['batch', 'transaction'] as const) {
      const res = await request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle(type, Array.from({ length: 1001 }, () => search('Patient?_count=1'))));
      expect(res.status).toBe(413);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].code).toBe('too-costly');
      expect(res.body.issue[0].expression).toEqual(['Bundle.entry']);
      expect(res.body.issue[0].diagnostics).toContain('MAX_BUNDLE_ENTRIES');
    }
  });

  test('metadata and reads are answered while the largest allowed batch runs', async () => {
    const p = await h.create(patient('Pendant'));
    expect((await request(h.app).get('/fhir/metadata')).status).toBe(200); // built once, before the batch
    // on SQLite, searches that each read every patient (the whole batch takes seconds); FerretDB scans
    // every document of a collection for anything but a filter on _id alone, so there the entries are reads
    const entries = Array.from({ length: 1000 }, (_, i) =>
      search(h.engine.name === 'sqlite' ? `Patient?name:contains=a,e,i,o,u,y,m,n,t,l&birthdate=ge19${String(10 + (i % 90)).padStart(2, '0')}&_total=accurate&_sort=-birthdate,family,given,-_lastUpdated&_count=10` : `Patient/${p.id}`),
    );
    // a time budget that FerretDB, slow on a busy machine, cannot run out of: what is tested here is that the others are answered
    const app = await appWith({ requestTimeLimitMs: 300_000 });
    let batchDone = false;
    const batch = request(app)
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(bundle('batch', entries))
      .then((r) => {
        batchDone = true;
        return r;
      });
    const waits: number[] = [];
    // once the batch has started, ask for metadata and a read again and again until it ends
    await new Promise((r) => setTimeout(r, 50));
    while (!batchDone) {
      const t0 = performance.now();
      const [meta, read] = await Promise.all([request(h.app).get('/fhir/metadata'), request(h.app).get(`/fhir/Patient/${p.id}`)]);
      waits.push(performance.now() - t0);
      expect(meta.status).toBe(200);
      expect(read.status).toBe(200);
    }
    const res = await batch;
    expect(res.status).toBe(200);
    expect(res.body.entry).toHaveLength(1000);
    expect(res.body.entry.every((e: { response: { status: string } }) => e.response.status.startsWith('200'))).toBe(true);
    // answered during the batch, each within a second (the issue's bound), not after it
    expect(waits.length).toBeGreaterThan(4);
    expect(Math.max(...waits)).toBeLessThan(1000);
  });

  test('a resource larger than MAX_RESOURCE_BYTES, or with an array longer than MAX_ARRAY_ITEMS, is refused with 413 before it is validated', async () => {
    const huge = await request(h.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Patient', name: Array.from({ length: 1_000_000 }, () => ({ family: 'a' })) }));
    expect(huge.status).toBe(413);
    expect(huge.body.issue[0].diagnostics).toContain('MAX_RESOURCE_BYTES');
    const many = await request(h.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'a', given: Array.from({ length: 10_001 }, () => 'b') }] }));
    expect(many.status).toBe(413);
    expect(many.body.issue[0].code).toBe('too-costly');
    expect(many.body.issue[0].expression).toEqual(['Patient.name[0].given']);
    expect(many.body.issue[0].diagnostics).toContain('MAX_ARRAY_ITEMS');
    // in a Bundle entry too
    const entry = await request(h.app)
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(bundle('batch', [{ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: 'x'.repeat(2 * 1024 * 1024) }] } }]));
    expect(entry.status).toBe(413);
    expect(entry.body.issue[0].expression).toEqual(['Bundle.entry[0].resource']);
    // within the limits, stored
    expect((await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(patient('Juste', { name: [{ family: 'a', given: Array.from({ length: 100 }, () => 'b') }] })))).status).toBe(201);
  });

  test('a paging position that was tampered with answers 400, in a search and in a history', async () => {
    const first = await request(h.app).get('/fhir/Patient?_count=2');
    const next = first.body.link.find((l: { relation: string }) => l.relation === 'next').url as string;
    const cursor = new URL(next).searchParams.get('_cursor')!;
    expect((await request(h.app).get(`/fhir/Patient?_count=2&_cursor=${encodeURIComponent(cursor)}`)).status).toBe(200);
    const forged = [
      `next:${Buffer.from(JSON.stringify([{ $ne: null }, 'x'])).toString('base64url')}`,
      `next:${Buffer.from('not json').toString('base64url')}`,
      `next:${Buffer.from(JSON.stringify([1, 2, 3, 4, 5])).toString('base64url')}`,
      `next:${Buffer.from(JSON.stringify({ a: 1 })).toString('base64url')}`,
    ];
    for (const c of forged) {
      for (const path of ['/fhir/Patient?_count=2', '/fhir/Patient/_history?_count=2', '/fhir/_history?_count=2']) {
        const res = await request(h.app).get(`${path}&_cursor=${encodeURIComponent(c)}`);
        expect(res.status).toBe(400);
        expect(res.body.issue[0].expression).toEqual(['_cursor']);
      }
    }
  });

  describe('a request past its time budget', () => {
    test('a batch stops where its budget ran out: the entries not run answer 503, the others their own status', async () => {
      const app = await appWith({ requestTimeLimitMs: h.engine.name === 'sqlite' ? 200 : 2000 });
      const entries = Array.from({ length: 1000 }, () => search('Patient?name:contains=imi&_total=accurate&_sort=birthdate'));
      const res = await request(app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle('batch', entries));
      expect(res.status).toBe(200);
      const statuses: string[] = res.body.entry.map((e: { response: { status: string } }) => e.response.status.slice(0, 3));
      expect(statuses[0]).toBe('200');
      expect(statuses[statuses.length - 1]).toBe('503');
      const firstStopped = statuses.indexOf('503');
      expect(statuses.slice(firstStopped).every((s) => s === '503')).toBe(true);
      expect(res.body.entry[firstStopped].response.outcome.issue[0].code).toBe('too-costly');
      expect(res.body.entry[firstStopped].response.outcome.issue[0].diagnostics).toContain('REQUEST_TIME_LIMIT');
    });
  });
});
