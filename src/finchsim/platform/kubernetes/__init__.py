"""The `Platform` seam over the official kubernetes client: one implementation for every cluster."""
