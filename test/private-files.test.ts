import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSecrets } from '../src/auth/keys';
import { FileMessageSender } from '../src/messaging';
import { SqliteStore } from '../src/store/sqlite/store';

/** Health data and secrets under DATA_DIR are the server user's only, whatever the umask. */
const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

let umask: number;
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-modes-'));
  // the widest umask: nothing may come out readable by others because of it
  umask = process.umask(0);
});
afterAll(() => {
  process.umask(umask);
  fs.rmSync(root, { recursive: true, force: true });
});

test('the SQLite database and its -wal and -shm files are 0600; the data directory it creates is 0700', async () => {
  const dataDir = path.join(root, 'new', 'data');
  const file = path.join(dataDir, 'espace-sante.sqlite');
  const store = new SqliteStore(file);
  await store.init();
  try {
    await store.setState('k', { v: 1 });
    expect([mode(path.join(root, 'new')), mode(dataDir)]).toEqual(['700', '700']);
    expect([file, `${file}-wal`, `${file}-shm`].map(mode)).toEqual(['600', '600', '600']);
  } finally {
    await store.close();
  }
});

test('a database file left readable by an earlier version is made 0600 at start', async () => {
  const dataDir = fs.mkdtempSync(path.join(root, 'old-'));
  fs.chmodSync(dataDir, 0o755);
  const file = path.join(dataDir, 'espace-sante.sqlite');
  const first = new SqliteStore(file);
  await first.init();
  await first.close();
  fs.chmodSync(file, 0o644);
  const again = new SqliteStore(file);
  await again.init();
  try {
    expect(mode(file)).toBe('600');
    // a directory the server did not create keeps the mode its owner gave it
    expect(mode(dataDir)).toBe('755');
  } finally {
    await again.close();
  }
});

test('the secrets and the development outbox are 0600 in 0700 directories, also when appended to', async () => {
  const dataDir = path.join(root, 'secrets');
  await loadSecrets(dataDir, {});
  expect(mode(dataDir)).toBe('700');
  expect(mode(path.join(dataDir, 'auth'))).toBe('700');
  expect(fs.readdirSync(path.join(dataDir, 'auth')).sort()).toEqual(['secret.json', 'signing-keys.json']);
  for (const f of fs.readdirSync(path.join(dataDir, 'auth'))) expect(mode(path.join(dataDir, 'auth', f))).toBe('600');

  const outbox = new FileMessageSender(dataDir);
  await outbox.send({ channel: 'email', to: 'helene@example.fr', subject: 'Code', text: '123456' });
  expect([mode(path.dirname(outbox.file)), mode(outbox.file)]).toEqual(['700', '600']);
  fs.chmodSync(outbox.file, 0o644);
  await outbox.send({ channel: 'sms', to: '+33600000000', subject: 'Code', text: '654321' });
  expect(mode(outbox.file)).toBe('600');
  expect(fs.readFileSync(outbox.file, 'utf8').trim().split('\n')).toHaveLength(2);
});
