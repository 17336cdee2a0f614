"""Pure computational core of the video analytics pipeline (no Airflow, no I/O)."""
