import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/log';
import { startServer, type RunningServer } from '../../src/server';
import { testConfig } from '../helpers/engines';

/** What reaches the server as bytes, before Express: a request Node's HTTP parser refuses still gets an OperationOutcome. */
describe('requests that are not valid HTTP', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-raw-'));
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(testConfig({ dataDir, port: 0, host: '127.0.0.1', baseUrl: undefined }), createLogger('silent'));
  });
  afterAll(async () => {
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const raw = (request: Buffer): Promise<string> =>
    new Promise((resolve, reject) => {
      const port = (server.server.address() as net.AddressInfo).port;
      const socket = net.connect(port, '127.0.0.1', () => socket.end(request));
      let out = '';
      socket.on('data', (d) => (out += d.toString('utf8')));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
    });

  test('a raw UTF-8 character in the query answers 400 with an OperationOutcome that says to percent-encode it', async () => {
    const answer = await raw(Buffer.from('GET /fhir/Patient?name=Hélène HTTP/1.1\r\nHost: localhost\r\n\r\n', 'utf8'));
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toContain('Content-Type: application/fhir+json');
    const outcome = JSON.parse(body);
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].diagnostics).toContain('percent-encoded');
  });

  test('the same query percent-encoded is an ordinary request (401 without a token)', async () => {
    const answer = await raw(Buffer.from('GET /fhir/Patient?name=H%C3%A9l%C3%A8ne HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
  });
});
