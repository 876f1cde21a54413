"""One module per `balenas` subcommand, each with `main(argv, prog) -> exit status`; platform/*.py and the
`python -m` entry points call the same functions. `_run` holds the steps they share (private to this package).
"""

__all__ = ["benchmark", "proxies", "report", "score_space", "sweep", "train"]
