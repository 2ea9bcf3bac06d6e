from beenet.cli import main

raise SystemExit(main())
