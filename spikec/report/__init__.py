"""What report.json says beyond the compile, and report.html, the page drawn from it (docs/report-schema.md):
``schema`` (the version and the JSON Schema), ``metrics`` (NeuroBench's, measured in the interpreter),
``energy`` (estimates, docs/energy.md), ``sections`` (report.json's ``metrics``, ``energy``, ``placement``),
``plots`` and ``html`` (the static page)."""
