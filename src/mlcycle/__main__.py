from mlcycle.cli.main import main

raise SystemExit(main())
