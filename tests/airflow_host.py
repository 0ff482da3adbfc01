"""Airflow's `[core] hostname_callable` in the deployment test (tests/test_airflow_deployment.py).

The test runs two Celery workers on one machine as if they were two machines: each one gets
its own loopback address (127.0.0.2, 127.0.0.3), serves its task logs there, and names itself
by it. Airflow records that name on every task instance it runs and fetches the task's log
from `http://<name>:<worker_log_server_port>/log/...`, so both the "which worker ran this
try" question and the log reading work as on real machines. Components without the variable
(scheduler, API server) keep Airflow's default, the machine's name.

Kept apart from tests/helpers (which imports dlt and the source) because every Airflow
process imports it.
"""

from __future__ import annotations

import os
import socket

ADDRESS_VARIABLE = "ZENDESK_TEST_AIRFLOW_WORKER_ADDRESS"


def hostname() -> str:
    return os.environ.get(ADDRESS_VARIABLE) or socket.getfqdn()
