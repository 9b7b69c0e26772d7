"""The CTR predictor: the process reward model (paper section 3.2.1), its training,
scoring and KServe server."""
