"""`nas dashboard` and `nas report`: optuna-dashboard on the study and a self-contained report (issue 6)."""
