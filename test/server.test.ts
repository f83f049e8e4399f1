import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The server as `npm start` runs it (the compiled dist/, built by `npm test`). */
const MAIN = path.join(__dirname, '..', 'dist', 'src', 'main.js');

/** Every server this file spawned, killed in `finally` whatever happened (a failed start included). */
const spawned: ChildProcessWithoutNullStreams[] = [];

function start(dataDir: string): Promise<{ proc: ChildProcessWithoutNullStreams; url: string; output: () => string }> {
  const proc = spawn(process.execPath, [MAIN], { env: { ...process.env, PORT: '0', DATA_DIR: dataDir, MONGODB_URI: '', LOG_LEVEL: 'info' } });
  spawned.push(proc);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 120 s: ${out}`)), 120_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /FHIR R4 at (http:\/\/\S+) \(store: sqlite/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1], output: () => out });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
}

function killSpawned(): void {
  for (const proc of spawned.splice(0)) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

/** The README quick start: the administrator's secret from the data directory, a token from the token endpoint. */
async function adminToken(url: string, dataDir: string): Promise<string> {
  const secret = fs.readFileSync(path.join(dataDir, 'auth', 'admin-client-secret'), 'utf8').trim();
  const res = await fetch(url.replace(/\/fhir$/, '/auth/token'), {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=system/*.cruds',
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; token_type: string; scope: string };
  expect(body.token_type).toBe('Bearer');
  expect(body.scope).toBe('system/*.cruds');
  return body.access_token;
}

const exited = (proc: ChildProcessWithoutNullStreams) => new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

// two cold starts of the real server, a 600-entry transaction: more than jest's default on a busy machine
test('npm start serves FHIR on the embedded store; SIGTERM drains in-flight requests and closes the store', async () => {
  expect(fs.existsSync(MAIN)).toBe(true);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-server-'));
  const dataDir = path.join(root, 'data');
  // the server's files are private whatever the umask it is started with
  const umask = process.umask(0);
  try {
    const server = await start(dataDir);
    process.umask(umask);
    expect(server.output()).toContain(`(store: sqlite, ${path.join(dataDir, 'espace-sante.sqlite')})`);
    const meta = await fetch(`${server.url}/metadata`);
    expect(meta.status).toBe(200);
    expect(((await meta.json()) as { resourceType: string }).resourceType).toBe('CapabilityStatement');

    // an empty data directory: an administrator client, and how to get a token, printed once
    expect(server.output()).toContain('An administrator client "admin" (system/*.cruds) was created');
    expect((await fetch(`${server.url}/Patient`)).status).toBe(401);
    const token = await adminToken(server.url, dataDir);
    const auth = { Authorization: `Bearer ${token}` };
    const created = await fetch(`${server.url}/Patient`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Lefèvre', given: ['Hélène'] }] }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect((await fetch(`${server.url}/Patient/${id}`, { headers: auth })).status).toBe(200);
    // no token, health data or secret in the logs
    expect(server.output()).not.toContain(token);
    expect(server.output()).not.toContain('Lef');
    // health data and secrets: the server's user only
    expect([dataDir, path.join(dataDir, 'auth')].map(mode)).toEqual(['700', '700']);
    const files = ['espace-sante.sqlite', 'espace-sante.sqlite-wal', 'espace-sante.sqlite-shm', 'auth/admin-client-secret', 'auth/secret.json', 'auth/signing-keys.json'];
    expect(files.map((f) => `${f} ${mode(path.join(dataDir, f))}`)).toEqual(files.map((f) => `${f} 600`));

    // a large transaction is in flight when SIGTERM arrives: it completes, then the process exits 0
    const entry = Array.from({ length: 600 }, (_, i) => ({ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test:drain', value: String(i) }] } }));
    const inFlight = fetch(server.url, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
    await new Promise((r) => setTimeout(r, 30));
    const exit = exited(server.proc);
    server.proc.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { entry: unknown[] }).entry).toHaveLength(600);
    expect(await exit).toBe(0);
    expect(server.output()).toMatch(/"msg":"stopped"/);
    // no health data in the logs: request lines carry the route template only
    expect(server.output()).not.toContain('urn:test:drain');

    // the data survived a clean close
    const again = await start(dataDir);
    expect(again.output()).not.toContain('administrator client');
    const search = await fetch(`${again.url}/Patient?identifier=urn:test:drain|&_count=0`, { headers: { Authorization: `Bearer ${await adminToken(again.url, dataDir)}` } });
    expect(((await search.json()) as { total: number }).total).toBe(600);
    const exit2 = exited(again.proc);
    again.proc.kill('SIGTERM');
    expect(await exit2).toBe(0);
  } finally {
    process.umask(umask);
    killSpawned();
    fs.rmSync(root, { recursive: true, force: true });
  }
}, 300_000);
