import type { Resource } from 'fhir/r4';
import { engines, withoutTransactions, withTransactions } from '../helpers/engines';
import { emptyIndex, type IndexEntries } from '../../src/search/extract';
import { tokenKeys } from '../../src/search/values';
import type { ResourceStore, WriteInput } from '../../src/store/types';
import { InvalidCursorError, UniqueKeyError } from '../../src/store/errors';

const patientJson = (id: string, family: string, v = 1): Resource => ({ resourceType: 'Patient', id, meta: { versionId: String(v) }, name: [{ family }] }) as Resource;
const withToken = (code: string): IndexEntries => ({ ...emptyIndex(), keys: tokenKeys('urn:s', code).map((key) => ({ param: 'identifier', key })) });
const put = (store: ResourceStore, id: string, family: string, code = 'x') =>
  store.write('Patient', id, (_cur, next): WriteInput => ({ resource: patientJson(id, family, next.versionId), index: withToken(code) }));
const plan = (code: string, count = 10) => ({ scopes: [{ type: 'Patient', conditions: [{ kind: 'key' as const, param: 'identifier', keys: tokenKeys('urn:s', code).slice(1, 2) }] }], sort: [], count, total: 'accurate' as const });

describe.each(engines())('ResourceStore [$name]', (engine) => {
  let store: ResourceStore;
  beforeAll(async () => {
    store = engine.create();
    await store.init();
  });
  afterAll(async () => {
    await store.close();
    await engine.cleanup();
  });

  test('write, read, vread and versions', async () => {
    const first = await put(store, 's1', 'A');
    expect(first.unchanged).toBe(false);
    expect(first.previous).toBeUndefined();
    expect(first.version.versionId).toBe(1);
    const second = await put(store, 's1', 'B');
    expect(second.version.versionId).toBe(2);
    expect(second.previous?.versionId).toBe(1);
    expect(second.version.lastUpdated).toBeGreaterThan(first.version.lastUpdated);
    const read = await store.read('Patient', 's1');
    expect(JSON.parse(read!.json!).name[0].family).toBe('B');
    expect(JSON.parse((await store.vread('Patient', 's1', 1))!.json!).name[0].family).toBe('A');
    expect(await store.vread('Patient', 's1', 3)).toBeUndefined();
    expect(await store.read('Patient', 'nope')).toBeUndefined();
  });

  test('a mutator that returns null writes nothing; one that throws leaves the store unchanged', async () => {
    await put(store, 's2', 'A');
    const r = await store.write('Patient', 's2', () => null);
    expect(r.unchanged).toBe(true);
    expect(r.version.versionId).toBe(1);
    await expect(
      store.write('Patient', 's2', () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect((await store.read('Patient', 's2'))!.versionId).toBe(1);
    expect((await store.history({ type: 'Patient', id: 's2', count: 10 })).items).toHaveLength(1);
  });

  test('delete keeps history and removes the resource from search', async () => {
    await put(store, 's3', 'A', 'gone');
    expect((await store.search(plan('gone'))).total).toBe(1);
    await store.write('Patient', 's3', () => ({ resource: null, index: emptyIndex() }));
    const cur = await store.read('Patient', 's3');
    expect(cur!.deleted).toBe(true);
    expect(cur!.json).toBeUndefined();
    expect((await store.search(plan('gone'))).total).toBe(0);
    const h = await store.history({ type: 'Patient', id: 's3', count: 10 });
    expect(h.items.map((v) => [v.versionId, v.deleted])).toEqual([
      [2, true],
      [1, false],
    ]);
  });

  test('an update replaces the index entries of the previous version', async () => {
    await put(store, 's4', 'A', 'old-code');
    await put(store, 's4', 'A', 'new-code');
    expect((await store.search(plan('old-code'))).total).toBe(0);
    expect((await store.search(plan('new-code'))).items.map((v) => v.id)).toEqual(['s4']);
  });

  test('concurrent writers to one resource: every version written once, none lost', async () => {
    await put(store, 's5', 'start');
    const writers = Array.from({ length: 25 }, (_, i) => put(store, 's5', `w${i}`));
    const results = await Promise.all(writers);
    expect(results.map((r) => r.version.versionId).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 2));
    const h = await store.history({ type: 'Patient', id: 's5', count: 100 });
    expect(h.items).toHaveLength(26);
    expect(new Set(h.items.map((v) => JSON.parse(v.json!).name[0].family)).size).toBe(26);
  });

  test('keyset paging over search results', async () => {
    for (let i = 0; i < 5; i++) await put(store, `p${i}`, 'P', 'paged');
    const p1 = await store.search(plan('paged', 2));
    expect(p1.items.map((v) => v.id)).toEqual(['p0', 'p1']);
    expect(p1.prev).toBeUndefined();
    const p2 = await store.search({ ...plan('paged', 2), cursor: { direction: 'next', position: p1.next! } });
    expect(p2.items.map((v) => v.id)).toEqual(['p2', 'p3']);
    const p3 = await store.search({ ...plan('paged', 2), cursor: { direction: 'next', position: p2.next! } });
    expect(p3.items.map((v) => v.id)).toEqual(['p4']);
    expect(p3.next).toBeUndefined();
    const back = await store.search({ ...plan('paged', 2), cursor: { direction: 'prev', position: p3.prev! } });
    expect(back.items.map((v) => v.id)).toEqual(['p2', 'p3']);
    // a position the store did not issue is refused, never read as a query
    await expect(store.search({ ...plan('paged', 2), cursor: { direction: 'next', position: 'not-a-position' } })).rejects.toThrow(InvalidCursorError);
    const forged = Buffer.from(JSON.stringify([{ $ne: null }])).toString('base64url');
    await expect(store.search({ ...plan('paged', 2), cursor: { direction: 'next', position: forged } })).rejects.toThrow(InvalidCursorError);
  });

  test('the store has multi-document transactions exactly when the run found the deployment has them', () => {
    expect(store.supportsTransactions).toBe(engine.transactions);
  });

  withoutTransactions(engine)('a store without multi-document transactions refuses to run one', async () => {
    await expect(store.transaction(async () => 1)).rejects.toThrow(/transactions/);
  });

  withTransactions(engine)('transaction: all writes or none', async () => {
    await expect(
      store.transaction(async (tx) => {
        await put(tx, 't1', 'in-tx');
        await put(tx, 't2', 'in-tx');
        expect((await tx.read('Patient', 't1'))!.versionId).toBe(1);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await store.read('Patient', 't1')).toBeUndefined();
    expect(await store.read('Patient', 't2')).toBeUndefined();
    await store.transaction(async (tx) => {
      await put(tx, 't1', 'in-tx');
      await put(tx, 't2', 'in-tx');
    });
    expect((await store.read('Patient', 't2'))!.versionId).toBe(1);
  });

  withTransactions(engine)('a transaction holds off other writers until it ends (no interleaving)', async () => {
    let outsideDone = false;
    const outside = (async () => {
      await new Promise((r) => setTimeout(r, 5));
      await put(store, 'iso', 'outside');
      outsideDone = true;
    })();
    await store.transaction(async (tx) => {
      await put(tx, 'iso', 'inside');
      await new Promise((r) => setTimeout(r, 30));
      expect(outsideDone).toBe(false);
      expect(JSON.parse((await tx.read('Patient', 'iso'))!.json!).name[0].family).toBe('inside');
    });
    await outside;
    expect((await store.read('Patient', 'iso'))!.versionId).toBe(2);
  });

  test('server state: values by key, deleted by null, listed by prefix, expiring, deleted by group', async () => {
    await store.setState('t:a', { n: 1 });
    await store.setState('t:b', [1, 2]);
    await store.setState('t:c', 'kept');
    await store.setState('u:a', 'other prefix');
    expect(await store.getState('t:a')).toEqual({ n: 1 });
    await store.setState('t:c', null);
    expect(await store.getState('t:c')).toBeUndefined();
    expect(await store.listState('t:')).toEqual([
      { key: 't:a', value: { n: 1 } },
      { key: 't:b', value: [1, 2] },
    ]);

    // an expired value is gone at once for readers, and its room is freed by the purge
    await store.setState('t:gone', 'x', { expiresAt: Date.now() - 1 });
    await store.setState('t:later', 'y', { expiresAt: Date.now() + 60_000 });
    expect(await store.getState('t:gone')).toBeUndefined();
    expect(await store.getState('t:later')).toBe('y');
    expect((await store.listState('t:')).map((e) => e.key)).toEqual(['t:a', 't:b', 't:later']);
    expect(await store.purgeExpiredState()).toBe(1);
    expect(await store.purgeExpiredState()).toBe(0);

    // a group goes at once, whatever the keys; other groups stay
    await store.setState('g:code', 'c', { group: 'grant-1', expiresAt: Date.now() + 60_000 });
    await store.setState('g:token', 't', { group: 'grant-1' });
    await store.setState('g:other', 'o', { group: 'grant-2' });
    expect(await store.deleteStateGroup('grant-1')).toBe(2);
    expect((await store.listState('g:')).map((e) => e.key)).toEqual(['g:other']);
    // setting a value again replaces its expiry and group
    await store.setState('g:other', 'o2');
    expect(await store.deleteStateGroup('grant-2')).toBe(0);
    expect(await store.getState('g:other')).toBe('o2');
  });

  test('server state: a claim is taken once, by one of several claimants at the same time, and again once it has expired', async () => {
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => store.claimState('c:one', i, { expiresAt: Date.now() + 60_000 })));
    expect(claims.filter(Boolean)).toEqual([true]);
    expect(await store.getState('c:one')).toBe(claims.indexOf(true));
    expect(await store.claimState('c:one', 'again')).toBe(false);
    await store.setState('c:one', null);
    expect(await store.claimState('c:one', 'after release')).toBe(true);
    await store.setState('c:two', 'stale', { expiresAt: Date.now() - 1 });
    expect(await store.claimState('c:two', 'fresh')).toBe(true);
    expect(await store.getState('c:two')).toBe('fresh');
  });

  test('unique keys: a key another live resource holds is refused, also by writes sent at once; deleting or changing frees it; what was stored before is held', async () => {
    const spec = [{ type: 'Patient', param: 'identifier', prefixes: ['s\u001furn:s\u001fu'] }];
    // written before the key was declared unique
    const first = engine.create();
    await first.init();
    await put(first, 'old', 'Ancien', 'u1');
    await first.close();
    // the same database, opened again with the key declared unique
    const unique = new (first.constructor as new (location: string) => ResourceStore)(first.location);
    await unique.init({ unique: spec });
    try {
      await expect(put(unique, 'new', 'Nouveau', 'u1')).rejects.toThrow(UniqueKeyError);
      // eight writes of one key to eight resources at once: one stands
      const racing = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => put(unique, `r${i}`, 'Course', 'u2')));
      expect(racing.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(racing.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof UniqueKeyError)).toBe(true);
      // its holder may be written again with it; a key outside the prefixes is not unique
      await put(unique, 'old', 'Ancien2', 'u1');
      await put(unique, 'x1', 'Autre', 'v1');
      await put(unique, 'x2', 'Autre', 'v1');
      // deleting the holder frees the key; so does changing it
      await unique.write('Patient', 'old', () => ({ resource: null, index: emptyIndex() }));
      await put(unique, 'new', 'Nouveau', 'u1');
      await put(unique, 'new', 'Nouveau', 'u3');
      await put(unique, 'third', 'Troisieme', 'u1');
    } finally {
      await unique.close();
    }
  });
});
