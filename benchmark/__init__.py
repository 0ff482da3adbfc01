"""Benchmark of the Zendesk source against the fake Zendesk: requests, rows, time, memory."""
