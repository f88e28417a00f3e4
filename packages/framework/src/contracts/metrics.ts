/**
 * The CloudWatch metrics the pipeline's Lambda functions publish (embedded metric format, in their logs: no
 * `PutMetricData` permission), shared by `@facerec/lambda-runtime`, which writes them, and `@facerec/cdk`,
 * whose alarms and dashboard read them. Every metric has the dimensions `service` (`detection` or
 * `recognition`) and `FunctionName`, so that two pipelines in one account keep their series apart.
 */
export const PIPELINE_METRICS = Object.freeze({
  namespace: 'facerec',
  detection: Object.freeze({
    service: 'detection',
    /** Frames answered 200 (Count). */
    framesAccepted: 'FramesAccepted',
    /** Frames answered 4xx: bad JSON or fields, too large, not an image (Count). */
    framesRefused: 'FramesRefused',
    /** Frames answered 5xx: the function failed to start, the queue refused them, an internal error (Count). */
    framesFailed: 'FramesFailed',
    /** Faces sent to recognition (Count; a frame with none counts 0). */
    facesDetected: 'FacesDetected',
    /** From the request to the 200 answer, per accepted frame: decode, detect, crop, queue (Milliseconds). */
    frameLatency: 'DetectionLatency',
  }),
  recognition: Object.freeze({
    service: 'recognition',
    /** Faces answered (Count). */
    facesAnswered: 'FacesAnswered',
    /** Of those, faces answered `unknown` (Count). */
    facesUnknown: 'FacesUnknown',
    /** Records handed back to the queue, to be delivered again (Count). */
    facesFailed: 'FacesFailed',
    /**
     * Per face answered, from the moment detection queued it (SQS `SentTimestamp`) to its answer sent: time
     * waiting in the request queue plus recognition (Milliseconds). A frame's whole latency on the server is
     * `DetectionLatency` plus this.
     */
    answerLatency: 'AnswerLatency',
    /** Per batch of records, from the invocation to its last answer (Milliseconds). */
    batchLatency: 'RecognitionLatency',
  }),
});
