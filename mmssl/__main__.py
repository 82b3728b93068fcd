from mmssl.cli import main

raise SystemExit(main())
