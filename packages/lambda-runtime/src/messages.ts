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

/** The body a client POSTs to the detection Function URL. */
export const detectionRequestSchema = z
  .object({
    /** The image, base64 (standard or URL-safe alphabet). */
    content: z.string().min(1, 'content must not be empty'),
    request_id: requestId,
    filename: z.string().min(1).max(256),
  })
  .strict();
export type DetectionRequest = z.infer<typeof detectionRequestSchema>;

const box = z.tuple([z.number(), z.number(), z.number(), z.number()]);

/** One face on the request queue: detection → recognition. */
export const faceMessageSchema = z
  .object({
    request_id: requestId,
    filename: z.string().min(1).max(256),
    face_index: z.number().int().min(0),
    face_count: z.number().int().min(1),
    box,
    score: z.number().min(0).max(1),
    /** The face crop, base64 JPEG. */
    crop: z.string().min(1),
  })
  .strict();
export type FaceMessage = z.infer<typeof faceMessageSchema>;

/** One answer on the response queue. A frame without faces gets exactly one, with `result: "no face"`. */
export const responseMessageSchema = z
  .object({
    request_id: requestId,
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

/** The result value of the response sent for a frame with no face. */
export const NO_FACE = 'no face';
