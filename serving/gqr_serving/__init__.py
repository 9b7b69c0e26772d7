"""gqr_serving."""
