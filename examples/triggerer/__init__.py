"""The example triggerer: Airflow's triggerer rebuilt on trio-comms' public API.

A supervisor process (the triggerer job, :mod:`.job`) keeps triggers in SQLite
(:mod:`.store`) and runs a runner subprocess (:mod:`.runner`) that executes up to
1,000 triggers at once (:mod:`.kinds`), calling the job from every kind of caller.
Chaos kills, stops and blocks the runner; the job restarts it; ``/health`` and
``/metrics`` (:mod:`.web`) tell the truth; every trigger ends with exactly one outcome.

Run it with ``python -m examples.triggerer`` (``make demo``).
"""
