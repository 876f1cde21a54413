"""One module per `balenas` subcommand, each with `main(argv, prog) -> exit status`; platform/*.py call them."""
