"""The `balenas` command line: one entry point for sweeps, reports, the proxy stage, whole-space scoring and
benchmark tables (`balenas --help`). The library itself lives in search_spaces/, trainables/ and analysis/."""
