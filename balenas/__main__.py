"""`python -m balenas ...` = the `balenas` console command."""

from balenas.cli import main

raise SystemExit(main())
