"""The Zendesk API: one HTTP client and what it needs to read a table's pages.

- `client`: `ZendeskClient`, auth headers, retries, the status policy, pagination;
- `paginators`: Zendesk's pagination styles as dlt paginators;
- `rate_limit`: request pacing, one budget per account shared by threads and processes.

Reads the endpoints from `tables` and waits through `run.progress` (so Ctrl-C stops a
wait); knows nothing of credentials' kinds beyond the auth object it is given.
"""
