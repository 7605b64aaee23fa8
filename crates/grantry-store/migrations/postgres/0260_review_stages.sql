-- Multi-stage access reviews: the last stage each decision item reached (0 for a one-stage
-- run), so a stage lists the items that reached it and a stage's end moves its items on.
ALTER TABLE review_decisions ADD COLUMN stage BIGINT NOT NULL DEFAULT 0;
CREATE INDEX review_decisions_stage ON review_decisions (instance_id, stage);
