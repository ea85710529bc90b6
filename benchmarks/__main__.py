"""``make bench``: the poller's cycle at fleet scale (:mod:`benchmarks.poller`)."""

from benchmarks.poller import main

raise SystemExit(main())
