/**
 * `@facerec/gallery-postgres`: a facerec gallery store (collections of identities that change at run time) in
 * PostgreSQL with pgvector, exact or HNSW search, with its schema migrations.
 *
 * @packageDocumentation
 */
export { MIGRATIONS_DIR, type Migration, migrate, readMigrations } from './migrate.js';
export {
  createCollectionFromUrl,
  hnswIndexName,
  openGalleryStoreFromUrl,
  PostgresGalleryStore,
  type PostgresGalleryStoreOptions,
  type PostgresSearchMode,
  redactConnectionString,
} from './store.js';
