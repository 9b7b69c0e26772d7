"""Alignment of the query-recommendation LLM to clicks (paper §3.1-§3.2): a tiny LM built from
scratch (or a local model), SFT on the universal prompt, CTR-guided beam search for chosen
responses, lowest-reward random samples for rejected ones, an overlap filter, length-matched
pair selection (eq. 6) and iterative DPO with TRL until the test-set AEC stops rising.

Never imports ``gqr_training.sim``: the reward is a :class:`~gqr_training.align.scoring.ListScorer`
(the learned CTR predictor), and the true CTR, when known, comes in as a callback.
"""
