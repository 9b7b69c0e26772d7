"""gqr_operator."""
