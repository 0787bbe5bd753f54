"""``python -m ethcrawl.crawler``: the same CLI as the ``ethcrawl`` script."""

from ethcrawl.crawler.cli import main

main(prog_name="ethcrawl")
