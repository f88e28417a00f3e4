export { BaseEmbedder, type BaseEmbedderSettings, EmbedderOutputError } from './base.js';
