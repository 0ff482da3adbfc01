"""A plain `pipeline.run(zendesk_support(...))` in its own process, for tests that need
two runs at once or a run killed mid-way. Exit 0 on success, 3 when refused because
another run of the pipeline is in progress, 1 on any other error."""

from __future__ import annotations

import argparse
import sys

import dlt

from zendesk import zendesk_support
from zendesk.errors import ZendeskRunInProgress


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--destination", required=True, help="a DuckDB file path or a postgresql:// URL")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--subdomain", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--export-rpm", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    if args.destination.startswith("postgresql://"):
        destination = dlt.destinations.postgres(args.destination)
    else:
        destination = dlt.destinations.duckdb(args.destination)
    pipeline = dlt.pipeline(
        pipeline_name="zd_overlap",
        pipelines_dir=args.pipelines_dir,
        destination=destination,
        dataset_name=args.dataset,
    )
    try:
        pipeline.run(
            zendesk_support(
                subdomain=args.subdomain,
                base_url=args.base_url,
                credentials={"oauth_token": args.token},
                max_requests_per_minute=100_000,
                export_requests_per_minute=args.export_rpm,
                rate_limit_window_seconds=args.window,
            )
        )
    except ZendeskRunInProgress as error:
        print(error, file=sys.stderr)
        return 3
    print("loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
