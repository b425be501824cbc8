from numstab.cli import main

main()
