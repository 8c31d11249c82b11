"""One module per API operation: its handler, its reply body and its entry of the table."""
