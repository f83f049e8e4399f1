import type Database from 'better-sqlite3';

/**
 * The SQLite schema as numbered migrations, applied in order when a store opens, each in one
 * transaction with the number it brings the file to (`PRAGMA user_version`). A migration, once
 * released, is never edited: a change to the schema is a new migration at the end of the list
 * (see src/store/README.md).
 */
export interface Migration {
  version: number;
  /** what it brings, for whoever reads the list */
  does: string;
  sql: string;
  /**
   * Migrations 1 to 5 are what servers did before the schema was numbered (user_version 0): whether
   * a file of that time holds this one's changes. A new migration has none.
   */
  heldUnnumbered?: (db: Database.Database) => boolean;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    does: 'current versions pointing at their history, the index tables, server state',
    // IF NOT EXISTS: a file from before the schema was numbered may hold some of these already
    sql: `
CREATE TABLE IF NOT EXISTS history (
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  content TEXT,
  UNIQUE (type, id, version)
);
CREATE INDEX IF NOT EXISTS history_type_seq ON history (type, seq);
CREATE TABLE IF NOT EXISTS resources (
  pk INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  hseq INTEGER NOT NULL,
  UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resources_type_updated ON resources (type, last_updated);
CREATE TABLE IF NOT EXISTS idx_key (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (type, param, key, pk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_key_pk ON idx_key (pk, param, key);
CREATE TABLE IF NOT EXISTS idx_string (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, PRIMARY KEY (type, param, norm, exact, pk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_string_pk ON idx_string (pk, param, norm);
CREATE TABLE IF NOT EXISTS idx_range (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, low REAL NOT NULL, high REAL NOT NULL, PRIMARY KEY (type, param, low, high, pk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_range_high ON idx_range (type, param, high, low, pk);
CREATE INDEX IF NOT EXISTS idx_range_pk ON idx_range (pk, param, low, high);
CREATE TABLE IF NOT EXISTS server_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`,
    heldUnnumbered: (db) => ['history', 'resources', 'idx_key', 'idx_string', 'idx_range', 'server_state'].every((t) => hasTable(db, t)),
  },
  {
    version: 2,
    does: "contained resources as rows of their own: the container's pk and the contained resource's own JSON",
    sql: `
ALTER TABLE resources ADD COLUMN container INTEGER;
ALTER TABLE resources ADD COLUMN content TEXT;
CREATE INDEX resources_container ON resources (container);
`,
    heldUnnumbered: (db) => columnsOf(db, 'resources').includes('container'),
  },
  {
    version: 3,
    does: 'server state that expires, and groups of it deleted at once',
    sql: `
ALTER TABLE server_state ADD COLUMN expires_at INTEGER;
ALTER TABLE server_state ADD COLUMN grp TEXT;
CREATE INDEX server_state_expiry ON server_state (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX server_state_group ON server_state (grp) WHERE grp IS NOT NULL;
`,
    heldUnnumbered: (db) => columnsOf(db, 'server_state').includes('grp'),
  },
  {
    version: 4,
    does: 'the keys kept unique (an INS), one holder each',
    sql: `
CREATE TABLE unique_key (type TEXT NOT NULL, key TEXT NOT NULL, pk INTEGER NOT NULL, PRIMARY KEY (type, key)) WITHOUT ROWID;
CREATE INDEX unique_key_pk ON unique_key (pk);
`,
    heldUnnumbered: (db) => hasTable(db, 'unique_key'),
  },
  {
    version: 5,
    does: 'the container index holds contained resources only (a full one cost every write a B-tree insert)',
    sql: `
DROP INDEX resources_container;
CREATE INDEX resources_container ON resources (container) WHERE container IS NOT NULL;
`,
    heldUnnumbered: (db) => /WHERE/i.test(indexSql(db, 'resources_container') ?? ''),
  },
];

const userVersion = (db: Database.Database): number => db.pragma('user_version', { simple: true }) as number;

/**
 * Brings the file to the last migration; returns the numbers it applied (none when the file was up
 * to date). Each migration runs in a transaction that takes the write lock first and checks the
 * number again, so two servers opening one file apply it once.
 */
export function migrate(db: Database.Database): number[] {
  const last = MIGRATIONS[MIGRATIONS.length - 1].version;
  const found = userVersion(db);
  if (found > last) throw new Error(`${db.name} has schema version ${found}, written by a newer server; this one knows versions up to ${last}`);
  if (found === last) return [];
  if (found === 0) db.transaction(() => userVersion(db) === 0 && db.pragma(`user_version = ${unnumberedVersion(db)}`)).immediate();
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    db.transaction(() => {
      if (userVersion(db) >= m.version) return;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
      applied.push(m.version);
    }).immediate();
  }
  return applied;
}

/**
 * The migration a file written before the schema was numbered had got to: servers of that time
 * changed the schema in the order of the migrations, so the file holds the first ones up to the
 * first it lacks. A new file (or one lacking a table of migration 1) is at 0.
 */
function unnumberedVersion(db: Database.Database): number {
  let version = 0;
  for (const m of MIGRATIONS) {
    if (!m.heldUnnumbered?.(db)) break;
    version = m.version;
  }
  return version;
}

const hasTable = (db: Database.Database, name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
const columnsOf = (db: Database.Database, table: string) => (db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name);
const indexSql = (db: Database.Database, name: string) => (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").get(name) as { sql: string } | undefined)?.sql;
