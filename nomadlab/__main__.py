from nomadlab.cli import main

raise SystemExit(main())
