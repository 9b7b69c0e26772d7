"""gqr_training."""
