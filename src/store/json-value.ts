/**
 * What a durable store can keep of a value. Inputs and results are stored as JSON; JSON.stringify throws on a
 * BigInt or a cycle and silently drops a function or symbol, so a value is checked before it reaches a store
 * (an enqueue is refused, a result fails its task) instead of failing a whole write batch later.
 */

/** Why a string or key cannot be stored, or undefined (a store's own rule for text, see `postgresTextProblem`). */
export type TextRule = (text: string) => string | undefined;

/**
 * Why `value` cannot be stored as JSON (a function, symbol or BigInt inside, or a cycle), or undefined. With
 * `text`, every string and key must also pass that rule (checked in the same walk). With `exact` (task inputs),
 * what JSON would change is refused too: a Map or Set (it comes back as `{}`), NaN or ±Infinity (back as
 * `null`). Why only inputs: an input is checked before anything is stored, and its caller can fix it; a result
 * is the work already done, kept as JSON writes it.
 */
export function jsonProblem(value: unknown, text?: TextRule, exact = false): string | undefined {
  if (value === undefined || value === null) return undefined;
  const t = typeof value;
  if (t === 'number') return exact ? numberProblem(value as number) : undefined;
  if (t === 'boolean') return undefined;
  if (t === 'string') return text?.(value as string);
  try {
    // A walk over what JSON.stringify would visit, without building the text (the store builds it once).
    return walk(value, '', new Set(), text, exact);
  } catch (error) {
    // a getter or toJSON that throws
    return `it cannot be stored as JSON (${(error as Error)?.message ?? String(error)})`;
  }
}

function walk(value: unknown, key: string, open: Set<object>, text: TextRule | undefined, exact: boolean): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(key: string): unknown }).toJSON(key);
  }
  switch (typeof value) {
    case 'string':
      return text?.(value);
    case 'number':
      return exact ? numberProblem(value) : undefined;
    case 'bigint':
      return 'it cannot be stored as JSON (Do not know how to serialize a BigInt)';
    case 'function':
    case 'symbol':
      return `a ${typeof value} cannot be stored as JSON`;
    case 'object': {
      if (value === null) return undefined;
      if (open.has(value)) return 'it cannot be stored as JSON (it holds a cycle)';
      // JSON keeps none of their entries: stored, they would come back as `{}`.
      if (exact && (value instanceof Map || value instanceof Set || value instanceof WeakMap || value instanceof WeakSet)) {
        return `a ${value.constructor.name} cannot be stored as JSON (it would come back as {}); use an object or an array`;
      }
      open.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = walk(value[i], String(i), open, text, exact);
          if (problem !== undefined) return problem;
        }
      } else {
        for (const k of Object.keys(value)) {
          const problem = (text === undefined ? undefined : text(k)) ?? walk((value as Record<string, unknown>)[k], k, open, text, exact);
          if (problem !== undefined) return problem;
        }
      }
      open.delete(value);
      return undefined;
    }
    default:
      return undefined;
  }
}

/** NaN and ±Infinity: JSON writes them as `null`, so they would come back changed. */
function numberProblem(n: number): string | undefined {
  return Number.isFinite(n) ? undefined : `the number ${n} cannot be stored as JSON (it would come back as null)`;
}

/** A NUL, or a surrogate without its pair (matched by code unit: no `u` flag). */
const BAD_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const HAS_BAD_TEXT = new RegExp(BAD_TEXT.source);

/** A NUL or an unpaired surrogate in a string or a key. */
export function hasBadText(s: string): boolean {
  return HAS_BAD_TEXT.test(s);
}

/**
 * PostgreSQL's rule for text: `text` cannot hold NUL, and `jsonb` refuses `\u0000` and unpaired surrogate escapes.
 */
export const postgresTextProblem: TextRule = (s) =>
  hasBadText(s) ? 'it holds a NUL character (\\u0000) or an unpaired surrogate, which PostgreSQL cannot store' : undefined;

/** `s` with each NUL and unpaired surrogate replaced by U+FFFD, as undecodable bytes are. */
export function replaceBadText(s: string): string {
  return hasBadText(s) ? s.replace(BAD_TEXT, '\uFFFD') : s;
}

/** A copy of a JSON value with every string and key passed through `replaceBadText`. */
export function replaceBadTextDeep(value: unknown): unknown {
  if (typeof value === 'string') return replaceBadText(value);
  if (value === null || typeof value !== 'object') return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return replaceBadTextDeep(JSON.parse(JSON.stringify(value)));
  if (Array.isArray(value)) return value.map(replaceBadTextDeep);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[replaceBadText(k)] = replaceBadTextDeep(v);
  return out;
}
