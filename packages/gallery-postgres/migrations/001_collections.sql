-- facerec gallery store, schema version 1: collections and their examples.
-- Applied by migrate() (src/migrate.ts) in one transaction, under an advisory lock.

CREATE EXTENSION IF NOT EXISTS vector;

-- One row per collection: the embedder its embeddings come from (matching with any other is refused), the
-- metric and the threshold.
CREATE TABLE facerec_collections (
  name           text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
  model_id       text NOT NULL,
  weights_sha256 text,
  dimension      integer NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
  preprocessing  jsonb NOT NULL,
  metric         text NOT NULL CHECK (metric IN ('euclidean', 'cosine')),
  threshold      double precision NOT NULL DEFAULT 0,
  calibration    jsonb,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- The examples: L2-normalised embeddings (so inner product orders like Euclidean and cosine distance).
-- `vector` without a dimension, so that collections of different embedders share the table; each collection
-- gets its own partial HNSW index on `embedding::vector(dimension)` when it is created (src/store.ts).
CREATE TABLE facerec_examples (
  collection text NOT NULL REFERENCES facerec_collections (name) ON DELETE CASCADE,
  id         text NOT NULL,
  identity   text NOT NULL CHECK (length(identity) > 0 AND identity <> 'unknown'),
  source     text NOT NULL DEFAULT '',
  embedding  vector NOT NULL,
  seq        bigserial NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (collection, id)
);

CREATE INDEX facerec_examples_by_identity ON facerec_examples (collection, identity COLLATE "C", seq);
