"""The contracts between the operator, the gateway, the training Jobs and the CTR predictor.

One definition each, imported by every side that writes or reads it: the list reward
(``reward``), a pipeline Job's result (``job``), the gateway's routing document (``routing``),
the ``/v1/stats`` answer (``stats``) and the CTR predictor's V1 wire format (``ctr``).
Pydantic and the standard library only: the operator imports this package and nothing else of
serving or training (its image carries no torch).
"""
