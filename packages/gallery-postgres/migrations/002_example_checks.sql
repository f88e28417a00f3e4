-- facerec gallery store, schema version 2: what every example must be, checked by the server for every write.
-- Applied by migrate() (src/migrate.ts) in one transaction, under an advisory lock.
--
-- Search ranks examples by inner product with a unit query, which is a distance only for unit embeddings: a
-- row written outside facerec with a longer vector (an UPDATE that scaled it) came out at distance 0 from every
-- face, a zero vector never. And `no face` is an answer of the pipeline, as `unknown` is (refused since
-- version 1): an identity of that name could not be told from it.
--
-- NOT VALID: rows already stored are not checked here (a database holding one would fail the upgrade);
-- searches and snapshots refuse such a row when they meet it (src/store.ts).
ALTER TABLE facerec_examples
  ADD CONSTRAINT facerec_examples_unit_embedding CHECK (abs(vector_norm(embedding) - 1) < 0.001) NOT VALID;
ALTER TABLE facerec_examples
  ADD CONSTRAINT facerec_examples_no_face_reserved CHECK (identity <> 'no face') NOT VALID;
