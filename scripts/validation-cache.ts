/**
 * Compiles the validation definitions into VALIDATION_CACHE_DIR (default
 * node_modules/.cache/espace-sante-fhir), keyed by the packages' fingerprint, so that no start of
 * the server, on any data directory, builds them. Run by `npm install` / `npm ci` (prepare).
 */
import { loadConfig } from '../src/config';
import { loadDefinitions } from '../src/validation/definitions';

const dir = loadConfig().validationCacheDir;
const t0 = performance.now();
const { definitions, fromCache } = loadDefinitions(dir);
const what = fromCache ? 'already in' : `compiled in ${((performance.now() - t0) / 1000).toFixed(1)} s into`;
process.stdout.write(`validation definitions ${definitions.fingerprint}: ${what} ${dir}\n`);
