from bodyfit_cli.cli import main

main()
