import fs from 'node:fs';
import path from 'node:path';
import { loadEsm } from '../../src/auth/esm';

/**
 * An ES-module-only package whose exports map offers only an `import` entry (fhir-kit-client 2):
 * `require` finds no entry in it, so this reads the `import` entry from its package.json and loads
 * that file with Node's own require of ES modules (loadEsm: native, in Node's main realm).
 */
export function loadImportEntry<T>(pkg: string): T {
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const root = path.join(dir, pkg);
    const manifest = path.join(root, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    const { exports } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { exports?: { '.'?: { import?: unknown }; import?: unknown } };
    const entry = exports?.['.']?.import ?? exports?.import;
    if (typeof entry !== 'string') throw new Error(`${pkg} has no import entry in its exports`);
    return loadEsm<T>(path.join(root, entry));
  }
  throw new Error(`${pkg} is not installed`);
}
