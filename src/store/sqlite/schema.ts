import type Database from 'better-sqlite3';

/** The tables and indexes of the embedded engine. */
const SCHEMA = `
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
  container INTEGER,
  content TEXT,
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
CREATE TABLE IF NOT EXISTS server_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER, grp TEXT);
CREATE TABLE IF NOT EXISTS unique_key (type TEXT NOT NULL, key TEXT NOT NULL, pk INTEGER NOT NULL, PRIMARY KEY (type, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS unique_key_pk ON unique_key (pk);
`;

/** Creates the schema, and brings a file of an earlier version to it. */
export function createSchema(db: Database.Database): void {
  db.exec(SCHEMA);
  // data files from before contained resources were indexed
  const columns = (db.pragma('table_info(resources)') as { name: string }[]).map((c) => c.name);
  if (!columns.includes('container')) db.exec('ALTER TABLE resources ADD COLUMN container INTEGER; ALTER TABLE resources ADD COLUMN content TEXT;');
  // contained resources only (every other row has none): a full index cost every write a B-tree insert
  const containerIndex = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'resources_container'").get() as { sql: string } | undefined;
  if (containerIndex && !/WHERE/i.test(containerIndex.sql)) db.exec('DROP INDEX resources_container');
  db.exec('CREATE INDEX IF NOT EXISTS resources_container ON resources (container) WHERE container IS NOT NULL');
  // data files from before server state could expire or be grouped
  const stateColumns = (db.pragma('table_info(server_state)') as { name: string }[]).map((c) => c.name);
  if (!stateColumns.includes('grp')) db.exec('ALTER TABLE server_state ADD COLUMN expires_at INTEGER; ALTER TABLE server_state ADD COLUMN grp TEXT;');
  db.exec('CREATE INDEX IF NOT EXISTS server_state_expiry ON server_state (expires_at) WHERE expires_at IS NOT NULL');
  db.exec('CREATE INDEX IF NOT EXISTS server_state_group ON server_state (grp) WHERE grp IS NOT NULL');
}
