import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Resource } from 'fhir/r4';
import { UNIQUE_IDENTIFIERS } from '../../../src/fhir/unique-identifiers';
import { emptyIndex, type IndexEntries } from '../../../src/search/extract';
import type { SearchPlan } from '../../../src/search/plan';
import { tokenKeys } from '../../../src/search/values';
import { UniqueKeyError } from '../../../src/store/errors';
import { MIGRATIONS, migrate } from '../../../src/store/sqlite/schema';
import { SqliteStore } from '../../../src/store/sqlite/store';

/**
 * A data file written by the server of commit f697a3d, before the schema was numbered (what it holds:
 * test/fixtures/store/make-sqlite-f697a3d.js, which made it), opened by today's store: it upgrades
 * in place, keeps every resource, version and value, and its INS stay unique.
 */
const FIXTURE = path.join(__dirname, '..', '..', 'fixtures', 'store', 'sqlite-f697a3d.sqlite');
const INS = 'urn:oid:1.2.250.1.213.1.4.8';
const LAST = MIGRATIONS[MIGRATIONS.length - 1].version;

const identifierIndex = (ins: string): IndexEntries => ({ ...emptyIndex(), keys: tokenKeys(INS, ins).map((key) => ({ param: 'identifier', key })) });
const putPatient = (store: SqliteStore, id: string, ins: string) =>
  store.write('Patient', id, () => ({ resource: { resourceType: 'Patient', id, identifier: [{ system: INS, value: ins }] } as Resource, index: identifierIndex(ins) }));
const search = (type: string, conditions: SearchPlan['scopes'][0]['conditions'], extra: Partial<SearchPlan> = {}): SearchPlan => ({ scopes: [{ type, conditions }], sort: [], count: 10, total: 'accurate', ...extra });
const ids = (page: { items: { id: string }[] }) => page.items.map((v) => v.id).sort();

/** Tables with their columns, indexes with their columns, uniqueness and partiality: the schema as SQLite uses it, whatever the SQL text that made it. */
function schemaOf(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    return tables.map((t) => ({
      table: t,
      columns: db.pragma(`table_info(${t})`),
      indexes: (db.pragma(`index_list(${t})`) as { name: string; unique: number; partial: number }[])
        .map((i) => ({ name: i.name, unique: i.unique, partial: i.partial, columns: (db.pragma(`index_info(${i.name})`) as { name: string }[]).map((c) => c.name) }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    }));
  } finally {
    db.close();
  }
}

describe('SQLite: a data file of the server before numbered migrations', () => {
  let dir: string;
  let file: string;
  let store: SqliteStore;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-upgrade-'));
    file = path.join(dir, 'espace-sante.sqlite');
    fs.copyFileSync(FIXTURE, file);
    store = new SqliteStore(file);
    await store.init({ unique: UNIQUE_IDENTIFIERS });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the fixture is a file of that time: unnumbered, without the unique key table, with a full container index', () => {
    // a copy: opening a WAL file, even read-only, writes its -shm beside it
    const copy = path.join(dir, 'as-written.sqlite');
    fs.copyFileSync(FIXTURE, copy);
    const db = new Database(copy, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'unique_key'").get()).toBeUndefined();
      expect((db.prepare("SELECT sql FROM sqlite_master WHERE name = 'resources_container'").get() as { sql: string }).sql).not.toMatch(/WHERE/);
    } finally {
      db.close();
    }
  });

  test('reads, versions and history are as written', async () => {
    const ins1 = await store.read('Patient', 'ins-1');
    expect(ins1?.versionId).toBe(2);
    expect(JSON.parse(ins1!.json!).name[0].family).toBe('Abel-Martin');
    expect(JSON.parse((await store.vread('Patient', 'ins-1', 1))!.json!).name[0].family).toBe('Abel');
    const gone = await store.read('Patient', 'gone');
    expect([gone?.versionId, gone?.deleted, gone?.json]).toEqual([3, true, undefined]);
    expect(JSON.parse((await store.vread('Patient', 'gone', 2))!.json!).name[0].family).toBe('Partie');
    const history = await store.history({ type: 'Patient', id: 'gone', count: 10 });
    expect(history.items.map((v) => [v.versionId, v.deleted])).toEqual([
      [3, true],
      [2, false],
      [1, false],
    ]);
    expect((await store.history({ type: 'Patient', count: 10 })).items.map((v) => `${v.id}/${v.versionId}`)).toEqual(['gone/3', 'gone/2', 'gone/1', 'ins-2/1', 'ins-1/2', 'ins-1/1']);
    expect((await store.readMany([{ type: 'Observation', id: 'obs-1' }, { type: 'Patient', id: 'gone' }])).map((v) => v.id)).toEqual(['obs-1']);
  });

  test('searches: by identifier, by reference, and contained resources with _contained only', async () => {
    const byIns = await store.search(search('Patient', [{ kind: 'key', param: 'identifier', keys: tokenKeys(INS, '2 80 04 75 123 456 78').slice(1) }]));
    expect(ids(byIns)).toEqual(['ins-1']);
    expect(byIns.total).toBe(1);
    // the deleted Patient's INS finds nothing
    expect((await store.search(search('Patient', [{ kind: 'key', param: 'identifier', keys: tokenKeys(INS, '1 11 11 11 111 111 11').slice(1) }]))).total).toBe(0);
    expect(ids(await store.search(search('Observation', [{ kind: 'key', param: 'subject', keys: ['Patient/ins-1'] }])))).toEqual(['obs-1']);
    expect(await store.referencesOf('Observation', ['obs-1', 'with-contained'], ['subject'])).toEqual(expect.arrayContaining(['Patient/ins-1', 'Patient/ins-2']));
    const family = [{ kind: 'string' as const, param: 'family', mode: 'prefix' as const, values: ['contenu'] }];
    expect((await store.search(search('Practitioner', family))).total).toBe(0);
    const contained = await store.search(search('Practitioner', family, { contained: 'true' }));
    expect(contained.items.map((v) => [v.id, v.container])).toEqual([['Observation/with-contained#perf', { type: 'Observation', id: 'with-contained', cid: 'perf' }]]);
    expect(JSON.parse(contained.items[0].json!).name[0].family).toBe('Contenu');
  });

  test('server state: values with and without expiry, a group; the expired one is gone', async () => {
    expect(await store.getState('fixture:plain')).toEqual({ n: 1 });
    expect(await store.getState('fixture:later')).toBe('until 2100');
    expect(await store.getState('fixture:expired')).toBeUndefined();
    expect((await store.listState('fixture:')).map((e) => e.key)).toEqual(['fixture:grouped', 'fixture:later', 'fixture:plain']);
    expect(await store.purgeExpiredState()).toBe(1);
    expect(await store.deleteStateGroup('fixture-group')).toBe(1);
    expect(await store.getState('fixture:grouped')).toBeUndefined();
  });

  test('the INS of what was stored before stays unique; the deleted Patient no longer holds its own', async () => {
    await expect(putPatient(store, 'copy', '2 80 04 75 123 456 78')).rejects.toThrow(UniqueKeyError);
    await expect(putPatient(store, 'copy', '1 40 02 75 111 222 33')).rejects.toThrow(UniqueKeyError);
    expect(await store.read('Patient', 'copy')).toBeUndefined();
    await putPatient(store, 'ins-1', '2 80 04 75 123 456 78');
    await putPatient(store, 'heir', '1 11 11 11 111 111 11');
    expect((await store.read('Patient', 'heir'))?.versionId).toBe(1);
    await store.write('Patient', 'heir', () => ({ resource: null, index: emptyIndex() }));
  });

  test('the upgraded file has the schema of a new one, its migrations recorded: opening it again changes nothing', async () => {
    const fresh = path.join(dir, 'fresh.sqlite');
    const created = new SqliteStore(fresh);
    await created.init();
    await created.close();
    await store.close();
    const upgraded = schemaOf(file);
    expect(upgraded).toEqual(schemaOf(fresh));
    expect(upgraded.map((t) => t.table)).toContain('unique_key');
    expect(upgraded.find((t) => t.table === 'resources')?.indexes).toContainEqual({ name: 'resources_container', unique: 0, partial: 1, columns: ['container'] });
    const db = new Database(file);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(LAST);
      expect(migrate(db)).toEqual([]);
    } finally {
      db.close();
    }
    const before = schemaOf(file);
    store = new SqliteStore(file);
    await store.init({ unique: UNIQUE_IDENTIFIERS });
    expect(schemaOf(file)).toEqual(before);
    expect((await store.read('Patient', 'ins-2'))?.versionId).toBe(1);
  });
});

describe('SQLite migrations', () => {
  test('a new file gets every migration, in order, once', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-migrate-'));
    const db = new Database(path.join(dir, 'new.sqlite'));
    try {
      expect(migrate(db)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      expect(db.pragma('user_version', { simple: true })).toBe(LAST);
      expect(migrate(db)).toEqual([]);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each(MIGRATIONS.map((m) => m.version).filter((v) => v <= 5))('a file from before numbering that got to migration %i is recorded there and gets the later ones', (reached) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-migrate-'));
    const db = new Database(path.join(dir, 'unnumbered.sqlite'));
    try {
      for (const m of MIGRATIONS.filter((x) => x.version <= reached)) db.exec(m.sql);
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(migrate(db)).toEqual(MIGRATIONS.map((m) => m.version).filter((v) => v > reached));
      expect(db.pragma('user_version', { simple: true })).toBe(LAST);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a file written by a newer server is refused, not changed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-migrate-'));
    const db = new Database(path.join(dir, 'newer.sqlite'));
    try {
      db.pragma(`user_version = ${LAST + 1}`);
      expect(() => migrate(db)).toThrow(/newer server/);
      expect(db.prepare('SELECT count(*) AS n FROM sqlite_master').get()).toEqual({ n: 0 });
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
