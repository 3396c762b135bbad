"""Loaded by pytest before anything else of ours (DESIGN §7).

The openai and anthropic SDKs use `httpx2`; githubkit uses `httpx`. Aliasing `httpx` to `httpx2`
before anything imports it lets one respx router intercept all three, so no test can reach the
internet through any of them. respx's own pytest plugin is disabled in pyproject.toml because it
imports `httpx` before this file runs.
"""

import httpx2

httpx2.alias_httpx()
