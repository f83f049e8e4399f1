import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** How often the checkpoint thread copies the write-ahead log back into the database file. */
const CHECKPOINT_EVERY_MS = 1000;

/** The checkpoint thread: PASSIVE checkpoints never wait for the writer. */
const CHECKPOINTER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
const run = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy or gone: the next round */ } };
const timer = setInterval(run, workerData.everyMs);
parentPort.on('message', () => { clearInterval(timer); run(); db.close(); process.exit(0); });
`;

/**
 * WAL checkpoints (copying the log back into the database file, and syncing it: hundreds of
 * milliseconds when the log is large) run in a worker thread on a connection of its own, every
 * CHECKPOINT_EVERY_MS, so that they never hold the event loop; the write connection then never
 * checkpoints by itself. An in-memory database, or a thread that cannot start, checkpoints as
 * SQLite does by default.
 */
export class Checkpoints {
  private worker?: Worker;

  constructor(db: Database.Database, file: string) {
    if (file === ':memory:') return;
    try {
      this.worker = new Worker(CHECKPOINTER, { eval: true, workerData: { module: require.resolve('better-sqlite3'), file, everyMs: CHECKPOINT_EVERY_MS } });
      this.worker.unref();
      this.worker.on('error', () => {
        this.worker = undefined;
        if (db.open) db.pragma('wal_autocheckpoint = 1000');
      });
      db.pragma('wal_autocheckpoint = 0');
    } catch {
      this.worker = undefined;
    }
  }

  /** Stops the thread after a last checkpoint. */
  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 5000);
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.postMessage('stop');
    });
  }
}
