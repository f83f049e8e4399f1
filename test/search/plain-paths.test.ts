import fs from 'node:fs';
import path from 'node:path';
import { frenchSearchParameters } from '../../src/server';
import { extractIndex, type IndexEntries } from '../../src/search/extract';
import { SearchParamRegistry } from '../../src/search/registry';
import { packageExamples, profilesDir } from '../../src/validation/packages';
import { makePatient } from '../../bench/patients';

/**
 * Plain-path expressions are walked in JavaScript instead of fhirpath.js: on every resource of the
 * French packages' examples (and their Bundles' entries), our own examples and the benchmark's
 * patients, the index is the same either way.
 */
const sorted = (i: IndexEntries) => ({
  keys: i.keys.map((k) => `${k.param}\u0000${k.key}`).sort(),
  strings: i.strings.map((s) => `${s.param}\u0000${s.norm}\u0000${s.exact}`).sort(),
  ranges: i.ranges.map((r) => `${r.param}\u0000${r.low}\u0000${r.high}`).sort(),
  contained: (i.contained ?? []).map((c) => `${c.type}#${c.cid}`).sort(),
});

const throws = (f: () => unknown) => {
  try {
    f();
    return false;
  } catch {
    return true;
  }
};
/** `code-value-quantity\u001e...` is an entry of `code-value-quantity` */
const base = (param: string) => param.split('\u001e')[0];

test('the JSON walk indexes exactly what fhirpath.js indexes', () => {
  const walked = new SearchParamRegistry(frenchSearchParameters());
  const fhirpath = new SearchParamRegistry(frenchSearchParameters(), { plainPaths: false });
  const resources: { resourceType: string }[] = [];
  const add = (r: { resourceType: string; entry?: { resource?: { resourceType: string } }[] }) => {
    resources.push(r);
    for (const e of r.entry ?? []) if (e.resource) add(e.resource);
  };
  for (const e of packageExamples()) add(e.resource as { resourceType: string });
  const ours = path.join(profilesDir(), 'espace-sante', 'examples');
  for (const f of fs.readdirSync(ours)) add(JSON.parse(fs.readFileSync(path.join(ours, f), 'utf8')));
  for (let i = 0; i < 20; i++) add(makePatient(i));
  expect(resources.length).toBeGreaterThan(100);
  let entries = 0;
  const differing = new Set<string>();
  for (const r of resources) {
    // where fhirpath.js fails (`as` on a collection of several items is an error in FHIRPath: the R4
    // expression `(Observation.component.value as Quantity)` with two components), the walk indexes
    // every item, as R5's `ofType(Quantity)` does; those parameters are left out of the comparison
    const failing = new Set([...fhirpath.forType(r.resourceType).values()].filter((d) => throws(() => d.evaluate(r))).map((d) => d.code));
    const without = (i: IndexEntries) => sorted({ ...i, keys: i.keys.filter((k) => !failing.has(base(k.param))), strings: i.strings.filter((k) => !failing.has(base(k.param))), ranges: i.ranges.filter((k) => !failing.has(base(k.param))) });
    failing.forEach((c) => differing.add(`${r.resourceType}.${c}`));
    const a = extractIndex(walked, r, 'http://fhir.test/fhir');
    entries += a.keys.length + a.strings.length + a.ranges.length;
    expect({ type: r.resourceType, ...without(a) }).toEqual({ type: r.resourceType, ...without(extractIndex(fhirpath, r, 'http://fhir.test/fhir')) });
  }
  expect(entries).toBeGreaterThan(2000);
  expect([...differing].sort()).toEqual(['Observation.combo-value-concept', 'Observation.combo-value-quantity', 'Observation.component-value-concept', 'Observation.component-value-quantity']);
});
