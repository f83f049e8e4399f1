import { hash } from 'node:crypto';
import { contains, equalValue } from './equality';
import { push } from './issues';
import { isObj, type Item, type Node, type Obj, type WalkContext } from './model';
import { checkPrimitive } from './primitives';

/**
 * The checks of one element that need nothing but the element and its values: cardinality, a
 * primitive's value and limits, fixed and pattern values, an attachment's size and hash against its
 * inline data. Bindings (bindings.ts), references (references.ts) and invariants (invariants.ts)
 * have modules of their own; the walk (walk.ts) calls them all.
 */

/** The number of values of an element against its min and max; `where` is the element's expression. */
export function checkCardinality(node: Node, count: number, where: string, ctx: WalkContext): void {
  if (count < node.min) push(ctx, 'error', 'required', where, `${where}: minimum required = ${node.min}, but only found ${count}`);
  if (count > node.max) push(ctx, 'error', 'structure', where, `${where}: maximum allowed = ${node.max}, but found ${count}`);
}

/** A primitive value: valid for its type (primitives.ts) and within the element's maxLength, minValue and maxValue; with no value, it has extensions. */
export function checkPrimitiveValue(node: Node, it: Item, ctx: WalkContext): void {
  if (it.v !== undefined) {
    const bad = checkPrimitive(it.type, it.v);
    if (bad) push(ctx, 'error', 'value', it.expr, `${it.expr}: ${bad}`);
    else checkPrimitiveLimits(node, it, ctx);
  } else if (!isObj(it.x) || (it.x.extension === undefined && it.x.id === undefined)) {
    push(ctx, 'error', 'invalid', it.expr, `${it.expr}: a primitive element must have a value or extensions`);
  }
}

function checkPrimitiveLimits(node: Node, it: Item, ctx: WalkContext): void {
  if (node.maxLength && typeof it.v === 'string' && it.v.length > node.maxLength) push(ctx, 'error', 'too-long', it.expr, `${it.expr}: the value is longer than ${node.maxLength} characters`);
  if (node.minValue !== undefined && typeof it.v === typeof node.minValue && (it.v as number) < (node.minValue as number)) push(ctx, 'error', 'value', it.expr, `${it.expr}: the value is below the minimum ${String(node.minValue)}`);
  if (node.maxValue !== undefined && typeof it.v === typeof node.maxValue && (it.v as number) > (node.maxValue as number)) push(ctx, 'error', 'value', it.expr, `${it.expr}: the value is above the maximum ${String(node.maxValue)}`);
}

/** fixed[x]: the value is exactly the one fixed; pattern[x]: the value holds the pattern. */
export function checkFixedPattern(node: Node, it: Item, ctx: WalkContext): void {
  if (node.fixed && it.v !== undefined && !equalValue(it.v, node.fixed.value, node.fixed.type)) {
    push(ctx, 'error', 'value', it.expr, `${it.expr}: the value must be exactly ${JSON.stringify(node.fixed.value)}`);
  }
  if (node.pattern && it.v !== undefined && !(node.pattern.type === 'Canonical' ? equalValue(it.v, node.pattern.value, 'Canonical') : contains(node.pattern.value, it.v))) {
    push(ctx, 'error', 'value', it.expr, `${it.expr}: the value must match the pattern ${JSON.stringify(node.pattern.value)}`);
  }
}

/** Attachment.size and Attachment.hash (base64 of the SHA-1) must be those of the inline data. */
export function checkAttachmentData(attachment: Obj, it: Item, ctx: WalkContext): void {
  const data = attachment.data;
  if (typeof data !== 'string' || (attachment.size === undefined && attachment.hash === undefined)) return;
  const bytes = Buffer.from(data, 'base64');
  if (typeof attachment.size === 'number' && attachment.size !== bytes.length) push(ctx, 'error', 'value', `${it.expr}.size`, `${it.expr}.size: ${attachment.size} bytes stated, but the data holds ${bytes.length}`);
  if (typeof attachment.hash === 'string') {
    const sha1 = hash('sha1', bytes, 'base64');
    if (attachment.hash.trim() !== sha1) push(ctx, 'error', 'value', `${it.expr}.hash`, `${it.expr}.hash: ${attachment.hash} is not the SHA-1 of the data (${sha1})`);
  }
}
