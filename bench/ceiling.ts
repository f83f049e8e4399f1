/**
 * The ceiling: a bare Express 5 app that answers GET /fhir/Patient/:id with a Patient held in
 * memory, with the Content-Type the FHIR server uses. Nothing else: no logging, no body parsing, no
 * store. Run as its own process by bench/run.ts:
 *   CEILING_BODY_FILE=patient.json PORT=0 HOST=127.0.0.1 node dist/bench/ceiling.js
 * Prints `ceiling: listening at http://HOST:PORT` when ready.
 */
import fs from 'node:fs';
import express from 'express';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const file = process.env.CEILING_BODY_FILE;
const body = file ? fs.readFileSync(file, 'utf8') : JSON.stringify({ resourceType: 'Patient', id: 'ceiling' });

const app = express();
// The FHIR server turns these off too; a bare app would otherwise hash every body for an ETag.
app.disable('x-powered-by');
app.set('etag', false);
app.get('/fhir/Patient/:id', (_req, res) => {
  res.setHeader('Content-Type', FHIR_JSON);
  res.send(body);
});

const host = process.env.HOST || '127.0.0.1';
const server = app.listen(Number(process.env.PORT ?? 0), host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`ceiling: listening at http://${host}:${port}\n`);
});
server.keepAliveTimeout = 5000;
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
