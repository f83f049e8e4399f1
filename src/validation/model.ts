import type { Issue } from '../outcome';
import type { Sd, SdElement, SdType } from './definitions';

/**
 * The checker's form of a profile and the state of one validation: a StructureDefinition snapshot
 * compiled into a tree of element nodes (compile.ts), the values of an instance as items, and the
 * context a walk carries (walk.ts). Every module of the validator speaks these types.
 */

export const BASE = 'http://hl7.org/fhir/StructureDefinition/';
export const EXT_URL = new Set(['extension', 'modifierExtension']);

export type Json = unknown;
export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Invariant {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression: string;
  /** evaluates the invariant on a node; true when it holds, 'unknown' when it cannot be evaluated here */
  test: (node: Json, ctx: WalkContext) => boolean | 'unknown';
}

export interface Node {
  id: string;
  path: string;
  /** the JSON property name (without [x]) */
  name: string;
  choice: boolean;
  min: number;
  max: number;
  /** repeating in the base definition: instances are indexed in expressions */
  repeats: boolean;
  types: SdType[];
  fixed?: SdElement['fixed'];
  pattern?: SdElement['pattern'];
  binding?: { strength: string; valueSet: string };
  invariants: Invariant[];
  slicing?: NonNullable<SdElement['slicing']>;
  slices: Node[];
  sliceName?: string;
  children: Node[];
  byName: Map<string, Node>;
  choiceChildren: Node[];
  contentReference?: string;
  maxLength?: number;
  minValue?: unknown;
  maxValue?: unknown;
  isModifier: boolean;
  /** the profile this node belongs to */
  sd: Sd;
  /** the root element of its StructureDefinition */
  isRoot: boolean;
  /** `_name`: the JSON property of a primitive's id and extensions; undefined when no type of the element is primitive */
  xname: string | undefined;
  /** the type of the values of a non-choice element: its (first) type, else Element */
  type0: string;
  /** '.' + name */
  dotName: string;
  /** is type0 a primitive type */
  prim0: boolean;
  /** choice elements: JSON key (name + type suffix) → type, for the keys met so far */
  choiceKeys?: Map<string, string>;
  /** memoised children and discriminator targets */
  kids?: Node[];
  sub?: Map<string, { node: Node; own: boolean } | null>;
  /** memoised per value type: the node's invariants then the type's (those the node does not redefine) */
  invFor?: Map<string, Invariant[]>;
  /** the two memos above for type0 */
  inv0?: Invariant[];
  tp0?: CompiledSd[];
  /** memoised per value type: the compiled profiles of the type (type.profile) */
  typeProfiles?: Map<string, CompiledSd[]>;
  /** memoised per discriminator: its path, parsed, and the element it designates in this slice */
  disc?: Map<{ type: string; path: string }, Disc>;
}

export interface Disc {
  /** the path without $this */
  path: string;
  /** an extension slice: the url of its definition (type profile) */
  extUrl?: string;
  segs: Seg[];
  found?: { node: Node; own: boolean };
}

/** One step of a discriminator path: a name, extension('url'), resolve() or ofType() */
export interface Seg {
  kind: 'name' | 'ext' | 'resolve' | 'ofType';
  name: string;
}

export interface CompiledSd {
  sd: Sd;
  root: Node;
  byId: Map<string, Node>;
}

/** One value of an element in an instance, with its type and the FHIRPath to it. */
export interface Item {
  v: Json;
  /** the `_name` object of a primitive */
  x?: Json;
  type: string;
  expr: string;
}

export interface WalkContext {
  issues: Issue[];
  resource: Obj;
  rootResource: Obj;
  /** resources of the enclosing Bundle by fullUrl, to resolve references */
  bundle?: Map<string, Obj>;
  /** profile URL being applied, named in messages */
  profile: string;
  depth: number;
  /**
   * the (element list, JSON object) pairs already walked for this issue list, with the expression:
   * an element reached through several profiles that share a definition (a slice unrolled from an
   * extension, the extension's own definition, a type profile) is walked once
   */
  walked?: Map<Obj, { children: Node[]; expr: string }[]>;
  /** codings, quantities and attachments already checked against what no profile changes (code systems, inline data): once each */
  checkedValues?: Set<Obj>;
}

export interface ValidateOptions {
  /** profiles to apply in addition to meta.profile (the required profiles, or $validate's `profile`) */
  profiles?: string[];
}

/**
 * What the checks of slices and references ask of the walk: to check one value against an element
 * (a slice, the sliced element, an extension's definition), and whether a value conforms to a profile.
 */
export interface Walk {
  checkItem(node: Node, it: Item, ctx: WalkContext): void;
  /** an extension no slice took: against its own definition when known; `closed`: no such extension is allowed */
  checkExtensionByUrl(node: Node, it: Item, ctx: WalkContext, closed: boolean): void;
  /** does the value conform to the profile (no error)? */
  conforms(v: Json, profile: string, ctx: WalkContext): boolean;
}
