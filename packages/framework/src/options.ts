import type { z } from 'zod';
import { InvalidOptionsError } from './errors.js';

/** Issues shown in one message; the rest are counted. */
const MAX_ISSUES = 8;
/** Longest issue message shown: a message can list every unknown key of a hostile input. */
const MAX_ISSUE_CHARS = 200;

/**
 * Joins zod issues into one line, `key: message; other.key: message`, bounded in size whatever the input
 * (at most 8 issues of at most 200 characters each, then `…and N more`), so an error never echoes a large
 * input back into a response or a log.
 */
export function formatIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, MAX_ISSUES).map((i) => {
    const text = i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message;
    return text.length > MAX_ISSUE_CHARS ? `${text.slice(0, MAX_ISSUE_CHARS)}…` : text;
  });
  const more = error.issues.length - shown.length;
  return shown.join('; ') + (more > 0 ? `; …and ${more} more` : '');
}

/**
 * Validates `value` (`undefined` counts as `{}`) with `schema`; any issue becomes an `InvalidOptionsError`
 * naming `component` and every bad key. Providers and factories validate their options once, here.
 */
export function parseOptions<T>(schema: z.ZodType<T>, value: unknown, component: string): T {
  const parsed = schema.safeParse(value === undefined ? {} : value);
  if (parsed.success) return parsed.data;
  throw new InvalidOptionsError(component, formatIssues(parsed.error), { cause: parsed.error });
}
