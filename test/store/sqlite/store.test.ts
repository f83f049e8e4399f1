import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Resource } from 'fhir/r4';
import type { SearchPlan } from '../../../src/search/plan';
import { withTimeBudget } from '../../../src/store/budget';
import { TimeBudgetError } from '../../../src/store/errors';
import { SqliteStore } from '../../../src/store/sqlite/store';

/**
 * SQLite runs on the server's only thread: a query that examines too much is stopped while it runs
 * (QUERY_TIME_LIMIT, and the request's time budget), and the store goes on serving.
 */
describe('SQLite queries under a time limit', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-qtl-'));
  const store = new SqliteStore(path.join(dir, 'limit.sqlite'), { queryTimeLimitMs: 1 });
  // every name containing "9", sorted and counted: it examines all 30,000 resources (tens of ms)
  const broad: SearchPlan = { scopes: [{ type: 'Patient', conditions: [{ kind: 'string', param: 'name', mode: 'contains', values: ['9'] }] }], sort: [{ param: 'name', index: 'string', descending: true }], count: 10, total: 'accurate' };
  const narrow: SearchPlan = { scopes: [{ type: 'Patient', conditions: [{ kind: 'id', ids: ['p19'] }] }], sort: [], count: 10, total: 'none' };

  beforeAll(async () => {
    await store.init();
    await Promise.all(
      Array.from({ length: 30000 }, (_, i) =>
        store.write('Patient', `p${i}`, () => ({ resource: { resourceType: 'Patient', id: `p${i}` } as Resource, index: { keys: [], ranges: [], strings: [{ param: 'name', norm: `nom${i}`, exact: `Nom${i}` }] } })),
      ),
    );
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a query longer than QUERY_TIME_LIMIT is stopped; the next one is served', async () => {
    await expect(store.search(broad)).rejects.toThrow(TimeBudgetError);
    await expect(store.search(broad)).rejects.toThrow(/QUERY_TIME_LIMIT/);
    expect((await store.search(narrow)).items.map((v) => v.id)).toEqual(['p19']);
  });

  test('a query of a request past its time budget is stopped', async () => {
    const roomy = new SqliteStore(path.join(dir, 'limit.sqlite'), { queryTimeLimitMs: 60000 });
    await roomy.init();
    try {
      expect((await roomy.search(broad)).total).toBe(10317);
      await expect(withTimeBudget(0, async () => roomy.search(broad))).rejects.toThrow(/time budget/);
    } finally {
      await roomy.close();
    }
  });
});

describe('SQLite write-ahead log', () => {
  test('a thread of its own copies the log back into the database file while the store is open (the writer never does)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-wal-'));
    const file = path.join(dir, 'wal.sqlite');
    const store = new SqliteStore(file);
    await store.init();
    try {
      const before = fs.statSync(file).size;
      await Promise.all(Array.from({ length: 2000 }, (_, i) => store.write('Patient', `w${i}`, () => ({ resource: { resourceType: 'Patient', id: `w${i}`, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(500)}</div>` } } as Resource, index: { keys: [], ranges: [], strings: [] } }))));
      const written = fs.statSync(`${file}-wal`).size;
      expect(written).toBeGreaterThan(1_000_000);
      // within a few checkpoint rounds the main file holds the data
      let after = before;
      for (let i = 0; i < 50 && after < before + 1_000_000; i++) {
        await new Promise((r) => setTimeout(r, 200));
        after = fs.statSync(file).size;
      }
      expect(after).toBeGreaterThan(before + 1_000_000);
      expect((await store.read('Patient', 'w1999'))?.versionId).toBe(1);
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
