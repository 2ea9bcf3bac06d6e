from beenet.cli import console_main

console_main()
