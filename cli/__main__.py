"""`python -m cli …`: the same as the `workflow-station` console script."""

from cli.commands import main

main()
