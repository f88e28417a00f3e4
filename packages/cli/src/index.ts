export { type ServeOptions, serveLocally } from './commands/pipeline.js';
export { createProgram, main } from './main.js';
export { functionUrlRegion, type SigningCredentials, type SigV4SenderOptions, sigV4Sender } from './sigv4.js';
