from mlcycle.cli import main

raise SystemExit(main())
