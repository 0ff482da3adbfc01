"""Run the fake Zendesk standalone: `python -m zendesk_fake --tickets N --port P --seed S`.

The first line printed is the base URL (scripts read it to find the server); the
credentials follow. Serves until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import List, Optional

from .server import FakeZendesk


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zendesk_fake", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=200, help="number of tickets to generate (default 200)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--seed", type=int, default=1, help="data seed (default 1)")
    args = parser.parse_args(argv)

    fake = FakeZendesk(seed=args.seed, tickets=args.tickets, port=args.port)
    fake.start()
    print(fake.base_url)
    print(f"subdomain:           {fake.subdomain}")
    print(f"email:               {fake.email}   (API token auth: user '{fake.email}/token')")
    print(f"api_token:           {fake.api_token}")
    print(f"oauth_token:         {fake.oauth_token}")
    print(f"oauth_client_id:     {fake.oauth_client_id}")
    print(f"oauth_client_secret: {fake.oauth_client_secret}")
    print("Serving; press Ctrl-C to stop.", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
