"""Integration tests: real Redis, MariaDB and the real local Airflow."""
