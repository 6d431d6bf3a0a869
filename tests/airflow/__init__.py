"""Proof with Airflow's own code, run by ``make test-airflow`` in venvs of their own
(never by ``make test``, which collects nothing here)."""
