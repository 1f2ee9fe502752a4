"""Views of the search database: optuna-dashboard on a study and a self-contained HTML report.

Reads Optuna studies through Optuna and our tables through ``storage``; imports nothing else of
ours (tests/test_layout.py). Import the sub-module you need: plotly and optuna-dashboard are slow
to load.
"""
