import { formatIssues, NO_FACE_RESULT, recordedCropPolicySchema } from '@facerec/framework';
import { z } from 'zod';

/**
 * The wire formats of the pipeline, validated with zod at every boundary. Field names are snake_case as
 * in the seed pipeline, so existing clients keep working.
 */

const requestId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, 'request_id may hold letters, digits and . _ : - only');

/**
 * The queue a client asks its answers to go to (an SQS queue URL), instead of the deployment's response queue:
 * several clients share one deployment by each polling a queue of its own. The detection handler takes only
 * the queues of its allow-list (`FACEREC_REPLY_QUEUES`).
 */
const replyTo = z.string().min(1).max(1024);

/** The body a client POSTs to the detection Function URL. */
export const detectionRequestSchema = z
  .object({
    /** The image, base64 (standard or URL-safe alphabet). */
    content: z.string().min(1, 'content must not be empty'),
    request_id: requestId,
    filename: z.string().min(1).max(256),
    /** Where this frame's answers go; default: the response queue. One of the allowed reply queues. */
    reply_to: replyTo.optional(),
  })
  .strict();
export type DetectionRequest = z.infer<typeof detectionRequestSchema>;

const box = z.tuple([z.number(), z.number(), z.number(), z.number()]);

/**
 * The frame a face or an answer belongs to: a UUID the detection handler makes for every frame it accepts, so
 * two frames sent with the same `request_id` are never mixed (their faces are told apart, and answered apart).
 */
const frameId = z.uuid();

/** One face on the request queue: detection → recognition. */
export const faceMessageSchema = z
  .object({
    request_id: requestId,
    frame_id: frameId,
    filename: z.string().min(1).max(256),
    face_index: z.number().int().min(0),
    face_count: z.number().int().min(1),
    box,
    score: z.number().min(0).max(1),
    /** The face crop, base64 JPEG. */
    crop: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64 (the crop is a JPEG as standard base64)'),
    /**
     * How the crop was cut (the embedder's crop policy the detection side was configured with). Recognition
     * refuses a face cut for another embedder than its own, instead of embedding the wrong geometry. Absent in
     * messages from detection functions older than this field, which are taken as they are.
     */
    crop_policy: recordedCropPolicySchema.optional(),
    /** The reply queue the client asked for (checked against the allow-list); absent: the response queue. */
    reply_to: replyTo.optional(),
  })
  // face_index < face_count is checked by the recognition handler: a refinement here would take `.pick()` and
  // `.omit()` away from this exported schema.
  .strict();
export type FaceMessage = z.infer<typeof faceMessageSchema>;

/**
 * One answer on the response queue. A frame without faces gets exactly one, with `result: "no face"`; a frame
 * with faces one per face. `request_id` and `result` are the seed's fields.
 */
export const responseMessageSchema = z
  .object({
    request_id: requestId,
    /** The frame answered (as the detection handler's 200 answer named it). */
    frame_id: frameId,
    filename: z.string(),
    /** Index of the face in its frame (largest first); `null` for "no face". */
    face_index: z.number().int().min(0).nullable(),
    face_count: z.number().int().min(0),
    /** The identity, `"unknown"`, or `"no face"`. */
    result: z.string(),
    /** Distance to the best gallery identity; `null` for "no face". */
    distance: z.number().nullable(),
    box: box.nullable(),
  })
  .strict();
export type ResponseMessage = z.infer<typeof responseMessageSchema>;

/**
 * A message as JSON text every queue takes: `JSON.stringify` already escapes control characters and lone
 * surrogates, and here U+FFFE and U+FFFF (which it leaves raw and SQS refuses) are escaped too, so a client's
 * filename holding them travels intact instead of failing the publish.
 */
export function messageBody(value: unknown): string {
  return JSON.stringify(value).replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** The result value of the response sent for a frame with no face (no identity may be called that). */
export const NO_FACE = NO_FACE_RESULT;

/**
 * Why a request body does not fit `schema`, for the 400 answer and the log, without repeating the caller's
 * input: unknown fields are counted and the allowed ones named (zod's message would quote each unknown key).
 */
export function requestIssues(error: z.ZodError, schema: z.ZodObject): string {
  const unknown = error.issues.filter((i) => i.code === 'unrecognized_keys');
  const others = error.issues.filter((i) => i.code !== 'unrecognized_keys');
  const unknownCount = unknown.reduce((n, i) => n + (i.code === 'unrecognized_keys' ? i.keys.length : 0), 0);
  return [
    ...(others.length ? [formatIssues(new z.ZodError(others))] : []),
    ...(unknownCount
      ? [
          `${unknownCount} unknown field${unknownCount === 1 ? '' : 's'}; allowed: ${Object.keys(schema.shape).join(', ')}`,
        ]
      : []),
  ].join('; ');
}

/**
 * The shape a request body's JSON may have. The bodies clients send (a frame, a face to add) are flat objects
 * of a few strings; a body of a few megabytes nested millions deep, or holding millions of tiny values, costs
 * `JSON.parse` a second or more of the one event loop (and a gigabyte), per request.
 */
export const REQUEST_JSON_LIMITS = Object.freeze({ depth: 8, values: 64 });

/**
 * What is wrong with the shape of `text` as a request body (not an object, deeper than `depth`, or more than
 * `values` values: commas and containers outside strings), or `undefined`; found by one scan that jumps over strings (native
 * `indexOf`), about a millisecond for 6 MB of base64. Written by hand: JSON parsers in npm build the whole value
 * first (the cost to avoid) or do not bound its shape. Malformed JSON gives `undefined`: the parser that follows
 * refuses it.
 */
export function requestJsonIssue(
  text: string,
  {
    depth: maxDepth,
    values: maxValues,
  }: { readonly depth: number; readonly values: number } = REQUEST_JSON_LIMITS,
): string | undefined {
  // Raw image bytes (a JPEG POSTed as image/jpeg) were scanned as JSON and refused for "more than 64 values".
  const first = text.search(/\S/);
  if (first >= 0 && text.charCodeAt(first) !== 0x7b) {
    return 'body is not a JSON object; POST a flat JSON object (an image goes in it base64-encoded), content-type application/json';
  }
  let depth = 0;
  let values = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // To the closing quote: one not escaped, i.e. after an even number of backslashes.
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j < 0) return undefined;
        let backslashes = 0;
        while (text.charCodeAt(j - 1 - backslashes) === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = j;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return `body nests deeper than ${maxDepth} levels; POST a flat JSON object`;
      if (++values > maxValues) return `body holds more than ${maxValues} values; POST a flat JSON object`;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2c && ++values > maxValues) {
      return `body holds more than ${maxValues} values; POST a flat JSON object`;
    }
  }
  return undefined;
}
