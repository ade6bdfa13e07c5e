from gridalarm.cli import main

main()
