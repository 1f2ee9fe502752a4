"""Views of the search database: optuna-dashboard, reports and plots (see the dashboards issue)."""
