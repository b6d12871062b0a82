"""``python -m spikec`` is the ``spikec`` command."""

from spikec.cli import main

raise SystemExit(main())
