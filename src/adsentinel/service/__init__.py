"""Services of the edges: status figures, the HTML report, the demo, exports and API tokens."""
