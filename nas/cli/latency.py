"""`nas latency build|validate|predict|devices`: the per-device latency table (issue 3)."""
