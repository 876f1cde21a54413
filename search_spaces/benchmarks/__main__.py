"""`python -m search_spaces.benchmarks convert|query ...`: the same command as `balenas benchmark`."""

from balenas.commands.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m search_spaces.benchmarks"))
