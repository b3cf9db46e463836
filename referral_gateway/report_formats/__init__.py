"""The forms a report leaves the gateway in: SVG charts (`charts`), CSV and JSON files and
the ISTV extract as CSV (`files`), and the HMAC-signed push with its HTTP headers
(`signing`). Presentation and wire formats only: what is counted, suppressed and published
is decided in the domain (`domain.reporting`, `domain.report_published`), which this package
reads and never the other way round. The web pages, the report command and the push
service all use it, so it sits beside them rather than inside `web`."""
