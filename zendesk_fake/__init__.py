"""A local fake of the Zendesk Support API for tests, benchmarks and the demo.

    from zendesk_fake import FakeZendesk

    with FakeZendesk(seed=1, tickets=200) as fake:      # generated data, served on 127.0.0.1
        requests.get(fake.base_url + "/api/v2/groups", auth=(f"{fake.email}/token", fake.api_token))

Data is deterministic per (seed, tickets) and UTC day; `mutate()` and `add_custom_field()`
change it like a live account; `ground_truth()` says what a correct replica holds;
`tables.py` maps every table the fake serves (path, paging, rows, ground truth);
`configure()` switches on plan gating, rate limits and faults; `request_counts()` tells how
many requests a client needed. `python -m zendesk_fake --tickets N` runs it standalone.
"""

from .generator import Account, generate_account
from .server import FakeZendesk
from .tables import TABLES, TRUTH_TABLES, FakeTable, Paging

__all__ = ["Account", "FakeTable", "FakeZendesk", "Paging", "TABLES", "TRUTH_TABLES", "generate_account"]
