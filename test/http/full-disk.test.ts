import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { createServices, type AppServices } from '../../src/server';
import { SqliteStore } from '../../src/store/sqlite/store';
import { StorageFullError } from '../../src/store/errors';
import type { ResourceStore } from '../../src/store/types';
import { backendToken, registerBackend, request, useToken } from '../helpers/auth';
import { testConfig, engines } from '../helpers/engines';
import { FHIR_JSON, patient } from '../helpers/http';

/**
 * A full disk: the write is refused with 507 and an OperationOutcome, nothing half-written, and
 * writes work again once there is room. The embedded store runs on a real small filesystem (a
 * tmpfs of 1 MB, which needs the right to mount: root); every engine is also tried behind a store
 * whose writes fail as the engines report a full disk.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-full-'));
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status === 0;
if (!mounted) console.warn('full disk: cannot mount a small tmpfs here (needs root): the real small-filesystem test is SKIPPED; the failing-store test runs');

async function serverOn(store: ResourceStore): Promise<{ svc: AppServices; app: ReturnType<typeof createApp> }> {
  const svc = await createServices(testConfig({ dataDir: path.join(os.tmpdir(), 'esf-full-auth') }), store);
  const app = createApp(svc, createLogger('silent'));
  const client = await registerBackend(svc, 'system/*.cruds');
  useToken(app, await backendToken(app, client, 'system/*.cruds'));
  return { svc, app };
}

const post = (app: ReturnType<typeof createApp>, body: unknown) => request(app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

(mounted ? test : test.skip)('SQLite on a full filesystem: 507, the acknowledged writes intact, writes again once there is room', async () => {
  const { svc, app } = await serverOn(new SqliteStore(path.join(dir, 'full.sqlite')));
  try {
    const stored: string[] = [];
    let refused: request.Response | undefined;
    // each Patient carries 20 kB of text: a 1 MB filesystem fills within a hundred
    for (let i = 0; i < 200 && !refused; i++) {
      const res = await post(app, patient(`Plein${i}`, { text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(20000)}</div>` } }));
      if (res.status === 201) stored.push(res.body.id);
      else refused = res;
    }
    expect(refused).toBeDefined();
    expect(refused!.status).toBe(507);
    expect(refused!.body.resourceType).toBe('OperationOutcome');
    expect(refused!.body.issue[0].code).toBe('no-store');
    expect(refused!.body.issue[0].diagnostics).toMatch(/no room/);
    expect(stored.length).toBeGreaterThan(0);
    // room again
    expect(spawnSync('mount', ['-o', 'remount,size=16m', dir]).status).toBe(0);
    const again = await post(app, patient('Reprise'));
    expect(again.status).toBe(201);
    for (const id of stored) expect((await request(app).get(`/fhir/Patient/${id}`)).status).toBe(200);
    expect((await request(app).get('/fhir/Patient?name=plein&_total=accurate&_count=0')).body.total).toBe(stored.length);
  } finally {
    await svc.store.close();
  }
});

describe.each(engines())('a store whose writes fail for want of room [$name]', (engine) => {
  test('507 with an OperationOutcome; the next write, with room again, succeeds', async () => {
    const store = engine.create();
    let full = false;
    const write = store.write.bind(store);
    store.write = (type, id, mutate) => (full ? Promise.reject(new StorageFullError('The database has no room left to write (disk full)')) : write(type, id, mutate));
    const { svc, app } = await serverOn(store);
    try {
      full = true;
      const res = await post(app, patient('Plein'));
      expect(res.status).toBe(507);
      expect(res.body.issue[0].code).toBe('no-store');
      full = false;
      expect((await post(app, patient('Reprise'))).status).toBe(201);
    } finally {
      await svc.store.close();
      await engine.cleanup();
    }
  });
});

afterAll(() => {
  if (mounted) spawnSync('umount', [dir]);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(path.join(os.tmpdir(), 'esf-full-auth'), { recursive: true, force: true });
});
