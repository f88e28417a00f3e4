/**
 * `@facerec/gallery-s3`: a facerec gallery file in Amazon S3 (or any S3-compatible store) — loaded once per
 * Lambda container, re-checked by ETag and swapped in without a cold start, and editable as a gallery store.
 *
 * @packageDocumentation
 */
export {
  openGalleryStoreFromUrl,
  parseS3Url,
  S3GalleryStore,
  type S3GalleryStoreOptions,
  type S3Location,
} from './store.js';
