"""`python -m app` is `autopack`."""

from app.cli import main

main()
