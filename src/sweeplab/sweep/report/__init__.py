"""What a sweep reports: the summary on its parent MLflow run and the one-page HTML report.

summary.py records on the parent run (counts, best trial, Optuna's plots) and prints the end summary;
data.py gathers what the HTML page shows, figures.py draws it, html.py writes the page.
"""
