-- facerec gallery store, schema version 2: what every example must be, checked by the server for every write.
-- Applied by migrate() (src/migrate.ts) in one transaction, under an advisory lock.
--
-- Search ranks examples by inner product with a unit query, which is a distance only for unit embeddings: a
-- row written outside facerec with a longer vector (an UPDATE that scaled it) came out nearer every face than it
-- is (at distance 0 once its inner product passed 1). And `no face` is an answer of the pipeline, as `unknown` is
-- (refused since version 1): an identity of that name could not be told from it.
--
-- Added NOT VALID, then validated where the rows already stored pass (the usual case); where one does not, the
-- check stays unvalidated (the upgrade does not fail on it) and a store opening a collection looks for such rows
-- in it and refuses them, naming the identity (src/store.ts).
ALTER TABLE facerec_examples
  ADD CONSTRAINT facerec_examples_unit_embedding CHECK (abs(vector_norm(embedding) - 1) < 0.001) NOT VALID;
ALTER TABLE facerec_examples
  ADD CONSTRAINT facerec_examples_no_face_reserved CHECK (identity <> 'no face') NOT VALID;
DO $$
BEGIN
  ALTER TABLE facerec_examples VALIDATE CONSTRAINT facerec_examples_unit_embedding;
EXCEPTION WHEN check_violation THEN
  NULL;
END $$;
DO $$
BEGIN
  ALTER TABLE facerec_examples VALIDATE CONSTRAINT facerec_examples_no_face_reserved;
EXCEPTION WHEN check_violation THEN
  NULL;
END $$;
