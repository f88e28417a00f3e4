import type { z } from 'zod';
import { InvalidOptionsError } from './errors.js';

/** Joins zod issues into one line: `key: message; other.key: message`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/**
 * Validates `value` (`undefined` counts as `{}`) with `schema`; any issue becomes an `InvalidOptionsError`
 * naming `component` and every bad key. Providers and factories validate their options once, here.
 */
export function parseOptions<T>(schema: z.ZodType<T>, value: unknown, component: string): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  throw new InvalidOptionsError(component, formatIssues(parsed.error), { cause: parsed.error });
}
