import fs from 'node:fs';
import path from 'node:path';

/**
 * What the server writes under DATA_DIR (the database, secrets, the development outbox) is health
 * data or secrets: readable by the server's user only, directories 0700 and files 0600. The modes
 * are set with chmod, which the umask does not narrow or widen.
 */

/** Creates `dir` and its missing parents, each 0700; a directory that exists keeps its mode. */
export function privateDir(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) missing.push(d);
  fs.mkdirSync(dir, { recursive: true });
  for (const d of missing) fs.chmodSync(d, 0o700);
}

/** Opens `file` (created if absent, in a private directory), makes it 0600 and runs `use` on it. */
function withPrivateFile(file: string, flags: string, use: (fd: number) => void): void {
  privateDir(path.dirname(file));
  const fd = fs.openSync(file, flags, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    use(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes (or, with `append`, appends) `data` to `file`, 0600. */
export function writePrivateFile(file: string, data: string, append = false): void {
  withPrivateFile(file, append ? 'a' : 'w', (fd) => fs.writeFileSync(fd, data));
}

/**
 * Makes the SQLite database `file` 0600 before SQLite opens it (creating it empty if absent):
 * SQLite then creates its -wal and -shm files with the database file's mode. Those that exist
 * already (from an earlier version) are made 0600 too.
 */
export function privateDatabaseFile(file: string): void {
  withPrivateFile(file, 'a', () => undefined);
  for (const extra of [`${file}-wal`, `${file}-shm`, `${file}-journal`]) if (fs.existsSync(extra)) fs.chmodSync(extra, 0o600);
}
