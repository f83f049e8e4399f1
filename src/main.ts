import { loadConfig } from './config';
import { createLogger } from './log';
import { startServer } from './server';
import { bootstrapAdministrator } from './auth/bootstrap';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const running = await startServer(config, log);
  const store = running.services.store;
  log.info({ url: running.url, store: store.engine, location: store.location, transactions: store.supportsTransactions }, 'listening');
  // A plain line for people reading the terminal.
  const welcome = running.services.auth ? await bootstrapAdministrator(running.services.auth, config.dataDir) : undefined;
  if (welcome) process.stdout.write(`${welcome}\n`);
  process.stdout.write(`espace-sante-fhir: FHIR R4 at ${running.url} (store: ${store.engine}, ${store.location})\n`);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (signals++ > 0) return;
    log.info({ signal }, 'draining in-flight requests and closing the store');
    running
      .stop()
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: Error) => {
        log.error({ err: err.name }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: Error) => {
  process.stderr.write(`espace-sante-fhir could not start: ${err.message}\n`);
  process.exit(1);
});
