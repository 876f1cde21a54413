"""How a search runs: architecture distributions, the search loop, the Tune Trainable, proxies, sweeps."""
