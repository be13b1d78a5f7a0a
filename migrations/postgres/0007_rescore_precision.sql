-- A re-scoring run may ask for each goal's success to a standard error (docs/model.md §6) in
-- place of a fixed number of paths; every score then records its standard error, and the goal or
-- plan keeps its latest beside its success probability.
ALTER TABLE rescore_runs ADD COLUMN success_precision DOUBLE PRECISION;
ALTER TABLE rescore_scores ADD COLUMN success_standard_error DOUBLE PRECISION;
ALTER TABLE rescore_plan_scores ADD COLUMN success_standard_error DOUBLE PRECISION;
ALTER TABLE goals ADD COLUMN success_standard_error DOUBLE PRECISION;
ALTER TABLE plans ADD COLUMN success_standard_error DOUBLE PRECISION;
