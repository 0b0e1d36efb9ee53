from perflink.cli import main

raise SystemExit(main())
