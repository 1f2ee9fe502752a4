"""`nas export`, `nas train`, `nas baselines`: getting found networks out and trained (issue 5)."""
