"""Autopack.

githubkit (and hishel) import `httpx`; the LLM SDKs use its maintained fork `httpx2`. Aliasing
`httpx` to `httpx2` here, before anything of ours imports it, gives the whole process one HTTP
stack: the one the tests run (conftest.py does the same), and the fork's connection pool, whose
bookkeeping is linear where httpcore 1.0's scans every pooled connection several times per request
(at 24 requests in flight it took 2-3x the CPU per request; docs/benchmarks.md).
"""

import sys

import httpx2

if sys.modules.get("httpx", httpx2) is httpx2:  # a host that imported httpx first keeps it
    httpx2.alias_httpx()
