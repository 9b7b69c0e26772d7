"""Evaluation reports that need the simulated world (oracle numbers); never imported by
learning code."""
