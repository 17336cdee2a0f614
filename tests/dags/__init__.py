"""DAG integrity and policy tests; no services."""
