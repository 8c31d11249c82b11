"""The HTTP surface: routes, OpenAPI, the API page, wire format, drain, metrics."""
