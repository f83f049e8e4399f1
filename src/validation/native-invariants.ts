import { deepEqual } from './equality';
import { isObj, type Json, type Obj, type WalkContext } from './model';
import { choiceKeyMatches } from './type-names';

/**
 * Invariants evaluated natively rather than by fhirpath.js, for speed (a FHIRPath invariant costs
 * tens of microseconds; these are met on every Patient and Observation): the R4 ones of common data
 * types and of Observation, the vital-signs profiles' vs-1 and FR Core Patient INS's, each used only
 * where the definition's expression is word for word the one written here and answering as it does
 * (test/validation/native-invariants.test.ts holds each against fhirpath.js); and the dom-* rules on
 * contained resources, by key.
 */

const DOM_NATIVE: Record<string, (r: Obj) => boolean> = {
  'dom-2': (r) => !Array.isArray(r.contained) || r.contained.every((c) => !isObj(c) || c.contained === undefined),
  'dom-4': (r) => !Array.isArray(r.contained) || r.contained.every((c) => !isObj(c) || !isObj(c.meta) || (c.meta.versionId === undefined && c.meta.lastUpdated === undefined)),
  'dom-5': (r) => !Array.isArray(r.contained) || r.contained.every((c) => !isObj(c) || !isObj(c.meta) || c.meta.security === undefined),
  'dom-3': (r) => {
    if (!Array.isArray(r.contained) || r.contained.length === 0) return true;
    const refs = new Set<string>();
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (isObj(v)) for (const [k, x] of Object.entries(v)) (k === 'reference' && typeof x === 'string' ? refs.add(x) : walk(x));
    };
    walk(r);
    return r.contained.every((c) => !isObj(c) || refs.has(`#${String(c.id)}`) || refs.has('#'));
  },
};

/** Invariants implemented natively (the expressions are the R4 ones; a profile redefining them with other text is evaluated by fhirpath). */
const NATIVE: Record<string, { expr: string; test: (v: Json, ctx: WalkContext) => boolean }> = {
  'ext-1': { expr: 'extension.exists() != value.exists()', test: (v) => !isObj(v) || (v.extension !== undefined) !== hasValueKey(v) },
  'ref-1': {
    expr: "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
    test: (v, ctx) => {
      if (!isObj(v) || typeof v.reference !== 'string' || !v.reference.startsWith('#')) return true;
      const id = v.reference.slice(1);
      return id === '' || (Array.isArray(ctx.rootResource.contained) && ctx.rootResource.contained.some((c) => isObj(c) && c.id === id));
    },
  },
  'cpt-2': { expr: 'value.empty() or system.exists()', test: (v) => !isObj(v) || v.value === undefined || v.system !== undefined },
  'per-1': {
    expr: 'start.hasValue().not() or end.hasValue().not() or (start <= end)',
    test: (v) => !isObj(v) || typeof v.start !== 'string' || typeof v.end !== 'string' || v.start.length !== v.end.length || v.start <= v.end,
  },
  'qty-3': { expr: 'code.empty() or system.exists()', test: (v) => !isObj(v) || v.code === undefined || v.system !== undefined },
  'att-1': { expr: 'data.empty() or contentType.exists()', test: (v) => !isObj(v) || v.data === undefined || v.contentType !== undefined },
  // Observation (R4 core and the vital-signs profiles)
  'obs-3': { expr: 'low.exists() or high.exists() or text.exists()', test: (v) => !isObj(v) || v.low !== undefined || v.high !== undefined || v.text !== undefined || v._text !== undefined },
  'obs-6': { expr: 'dataAbsentReason.empty() or value.empty()', test: (v) => !isObj(v) || v.dataAbsentReason === undefined || !hasChoiceValue(v, 'value') },
  'obs-7': {
    expr: 'value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()',
    test: (v, ctx) => {
      if (!isObj(v) || !hasChoiceValue(v, 'value') || !Array.isArray(v.component)) return true;
      const own = isObj(ctx.resource.code) && Array.isArray(ctx.resource.code.coding) ? ctx.resource.code.coding : [];
      if (!own.length) return true;
      return !v.component.some((c) => isObj(c) && isObj(c.code) && Array.isArray(c.code.coding) && c.code.coding.some((x) => own.some((o) => deepEqual(x, o))));
    },
  },
  'vs-2': {
    expr: '(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())',
    test: (v) => !isObj(v) || v.component !== undefined || v.hasMember !== undefined || v.dataAbsentReason !== undefined || hasChoiceValue(v, 'value'),
  },
  'vs-3': { expr: 'value.exists() or dataAbsentReason.exists()', test: (v) => !isObj(v) || v.dataAbsentReason !== undefined || hasChoiceValue(v, 'value') },
};

/** vs-1 (two wordings): a dateTime effective[x] is precise to the day (instants, the other string type there, always are) */
const VS_1: Record<string, number> = { '$this is dateTime implies $this.toString().length() >= 10': 10, '($this as dateTime).toString().length() >= 8': 8 };

// FR Core Patient INS invariants, natively (same semantics as their FHIRPath, which costs ~60 µs each in fhirpath.js)
const RELIABILITY = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability';
const VALI = "(extension('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability').extension('identityStatus').value.exists(code = 'VALI'))";
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
/** The value[x] of an extension (the first `value…` property). */
function valueOf(e: Obj): unknown {
  for (const k in e) if (k.startsWith('value')) return e[k];
  return undefined;
}
/** Does the object hold the choice element `name` (name + type, or _name + type with an extension)? */
function hasChoiceValue(e: Obj, name: string): boolean {
  for (const k in e) if (choiceKeyMatches(k, name)) return true;
  return false;
}
function hasValueKey(e: Obj): boolean {
  for (const k in e) if (k.startsWith('value')) return true;
  return false;
}
/** identity reliability status VALI (fr-core-identity-reliability → identityStatus → code VALI) */
function isVali(r: Obj): boolean {
  const exts = r.extension;
  if (!Array.isArray(exts)) return false;
  for (const e of exts) {
    if (!isObj(e) || e.url !== RELIABILITY || !Array.isArray(e.extension)) continue;
    for (const x of e.extension) {
      if (!isObj(x) || x.url !== 'identityStatus') continue;
      const v = valueOf(x);
      if (isObj(v) && v.code === 'VALI') return true;
    }
  }
  return false;
}
const FR_NATIVE: Record<string, { expr: string; test: (v: Json) => boolean }> = {
  'fr-core-1': {
    expr: `${VALI} implies (identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.8' and use = 'official' and type.coding.exists(code = 'INS-NIR')).exists() or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.9' and use = 'official').exists() or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.10' and use = 'official').exists() or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.11' and use = 'official').exists())`,
    test: (v) =>
      !isObj(v) ||
      !isVali(v) ||
      arr(v.identifier).some(
        (i) =>
          i.use === 'official' &&
          ((i.system === 'urn:oid:1.2.250.1.213.1.4.8' && isObj(i.type) && arr(i.type.coding).some((c) => c.code === 'INS-NIR')) ||
            i.system === 'urn:oid:1.2.250.1.213.1.4.9' ||
            i.system === 'urn:oid:1.2.250.1.213.1.4.10' ||
            i.system === 'urn:oid:1.2.250.1.213.1.4.11'),
      ),
  },
  'fr-core-2': { expr: `${VALI} implies (identifier.where(use = 'official').count() = 1)`, test: (v) => !isObj(v) || !isVali(v) || arr(v.identifier).filter((i) => i.use === 'official').length === 1 },
  'fr-core-3': {
    expr: `${VALI} implies extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value.extension('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code').value.code != '99999'`,
    test: (v) => {
      if (!isObj(v) || !isVali(v)) return true;
      // the INSEE codes of the birth place: the invariant fails only when there is exactly one and it is 99999
      let n = 0;
      let code: unknown;
      for (const e of arr(v.extension)) {
        if (e.url !== 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace') continue;
        const place = valueOf(e);
        if (!isObj(place)) continue;
        for (const x of arr(place.extension)) {
          if (x.url !== 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code') continue;
          const c = valueOf(x);
          if (isObj(c) && c.code !== undefined) {
            n++;
            code = c.code;
          }
        }
      }
      return n !== 1 || code !== '99999';
    },
  },
  'pat-1': { expr: 'name.exists() or telecom.exists() or address.exists() or organization.exists()', test: (v) => !isObj(v) || ['name', 'telecom', 'address', 'organization'].some((k) => v[k] !== undefined) },
};

/**
 * The native implementation of an invariant (same semantics as its FHIRPath expression, which it must
 * match word for word), or undefined: the expression is then evaluated by fhirpath.js. Exported for
 * the tests that hold each one against fhirpath.js.
 */
export function nativeInvariant(key: string, expression: string): ((v: Json, ctx: WalkContext) => boolean) | undefined {
  const fr = FR_NATIVE[key];
  if (fr && fr.expr === expression) return fr.test;
  const native = NATIVE[key];
  if (native && native.expr === expression) return native.test;
  const vs1 = key === 'vs-1' ? VS_1[expression] : undefined;
  if (vs1) return (v) => typeof v !== 'string' || v.length >= vs1;
  return undefined;
}

/** The native implementation of a dom-* invariant (rules on contained resources), by its key alone. */
export function domInvariant(key: string): ((v: Json) => boolean) | undefined {
  if (!key.startsWith('dom-') || !(key in DOM_NATIVE)) return undefined;
  const dom = DOM_NATIVE[key];
  return (v) => !isObj(v) || dom(v);
}
